"""Training tasks sampled from a dataset: class subsets with a few labelled samples per class, seeded.

Model Spider learns to rank models for *tasks*, so it needs many tasks, not many datasets. Each dataset is read once:
:func:`~hf_spider.tokens.sampling.sample_task` draws a pool of up to ``pool_per_class`` samples per class (only those
rows are decoded). Every training task is then a subset of that pool: 2..C of the dataset's classes, ``per_class``
training samples of each, plus ``test_per_class`` held-out samples of each when its models are also fine-tuned. A
task is a list of pool indices, so it is cheap to store, to reproduce and to check against the data it came from.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidDatasetError
from ..tokens.sampling import DEFAULT_PER_CLASS, sample_task
from ..tokens.sources import TaskSource
from ..tokens.task import Modality, TaskDescription

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSampling:
    """How training tasks are drawn from each dataset.

    Args:
        tasks_per_dataset: training tasks per dataset.
        per_class: training samples per class of a task (what the estimators and the task tokens see).
        min_classes / max_classes: a task has between these many classes (``max_classes=None``: all of them).
        test_per_class: held-out samples per class for the fine-tuning accuracy (0 when nothing is fine-tuned).
        pool_per_class: samples per class read from each dataset; tasks draw from them (at least
            ``per_class + test_per_class``; more gives more varied tasks).
        seed: seed of the pool draw and of every task.
    """

    tasks_per_dataset: int = 50
    per_class: int = DEFAULT_PER_CLASS
    min_classes: int = 2
    max_classes: int | None = None
    test_per_class: int = 0
    pool_per_class: int = 40
    seed: int = 0

    def __post_init__(self) -> None:
        if self.tasks_per_dataset < 1:
            raise InvalidDatasetError(f"tasks_per_dataset={self.tasks_per_dataset}; pass at least 1")
        if self.per_class < 2:
            raise InvalidDatasetError(f"per_class={self.per_class}; estimators need at least 2 samples per class")
        if self.min_classes < 2 or (self.max_classes is not None and self.max_classes < self.min_classes):
            raise InvalidDatasetError(
                f"classes per task must satisfy 2 <= min_classes <= max_classes (got {self.min_classes}.."
                f"{self.max_classes}); fix --min-classes / --max-classes"
            )
        if self.test_per_class < 0:
            raise InvalidDatasetError(f"test_per_class={self.test_per_class}; pass 0 or more")
        if self.pool_per_class < self.per_class + self.test_per_class:
            raise InvalidDatasetError(
                f"pool_per_class={self.pool_per_class} cannot hold per_class + test_per_class = "
                f"{self.per_class + self.test_per_class} samples; raise --pool-per-class"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks_per_dataset": self.tasks_per_dataset,
            "per_class": self.per_class,
            "min_classes": self.min_classes,
            "max_classes": self.max_classes,
            "test_per_class": self.test_per_class,
            "pool_per_class": self.pool_per_class,
            "seed": self.seed,
        }


@dataclass(frozen=True, eq=False)
class DatasetPool:
    """The samples read once from one dataset; every training task of that dataset is a subset of them.

    Args:
        name: the dataset's key in the records (unique within a build).
        description: the whole dataset (label names, sizes, where it came from).
        inputs: ``[P]`` PIL images (RGB) or non-empty strings, grouped by class.
        labels: ``[P]`` int64 class ids into ``description.label_names``.
        digest: SHA-256 of the labels and the inputs' content: a resumed build checks it reads the same data.
    """

    name: str
    description: TaskDescription
    inputs: list[Any]
    labels: np.ndarray
    digest: str

    @property
    def modality(self) -> Modality:
        return self.description.modality


@dataclass(frozen=True)
class TrainingTask:
    """One sampled task: a class subset of a dataset and the pool indices of its samples.

    Args:
        task_id: ``"<dataset>:<index>"``, the task's key in the records (the ``target`` column).
        dataset: the :attr:`DatasetPool.name` it was drawn from.
        classes: the dataset's class ids the task uses; task label ``i`` is dataset class ``classes[i]``.
        train: pool indices of the training samples, grouped by task label.
        test: pool indices of the held-out samples (empty without fine-tuning), grouped by task label.
    """

    task_id: str
    dataset: str
    classes: tuple[int, ...]
    train: tuple[int, ...]
    test: tuple[int, ...]

    def labels_of(self, pool: DatasetPool, indices: tuple[int, ...]) -> np.ndarray:
        """``[len(indices)]`` task labels (``0..len(classes) - 1``) of pool samples."""
        position = {c: i for i, c in enumerate(self.classes)}
        return np.array([position[int(pool.labels[j])] for j in indices], dtype=np.int64)

    def description(self, pool: DatasetPool) -> TaskDescription:
        """The task as a :class:`TaskDescription`: its class names and its ``per_class`` x classes training samples."""
        names = tuple(pool.description.label_names[c] for c in self.classes)
        counts = tuple(int(n) for n in np.bincount(self.labels_of(pool, self.train), minlength=len(names)))
        return TaskDescription(
            name=self.task_id,
            modality=pool.modality,
            label_names=names,
            num_examples={"train": len(self.train)},
            source=pool.description.source or pool.name,
            class_counts=counts,
            local=pool.description.local,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "dataset": self.dataset,
            "classes": list(self.classes),
            "train": list(self.train),
            "test": list(self.test),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingTask:
        return cls(
            task_id=str(data["task_id"]),
            dataset=str(data["dataset"]),
            classes=tuple(int(c) for c in data["classes"]),
            train=tuple(int(i) for i in data["train"]),
            test=tuple(int(i) for i in data["test"]),
        )


def draw_pool(source: TaskSource, sampling: TaskSampling, *, name: str | None = None) -> DatasetPool:
    """Read ``pool_per_class`` samples of each class of ``source`` (seeded; corrupt samples skipped and replaced).

    Raises:
        InvalidDatasetError: the dataset has no samples, or a class has no usable one.
    """
    sample = sample_task(source, per_class=sampling.pool_per_class, seed=sampling.seed)
    labels = sample.labels.astype(np.int64)
    return DatasetPool(
        name=name or source.description.name,
        description=source.description,
        inputs=sample.inputs,
        labels=labels,
        digest=pool_digest(sample.inputs, labels),
    )


def sample_tasks(pool: DatasetPool, sampling: TaskSampling) -> list[TrainingTask]:
    """``sampling.tasks_per_dataset`` tasks of ``pool``; task ``i`` depends on the seed, the dataset and ``i`` only.

    Only classes with at least ``per_class + test_per_class`` pool samples take part.

    Raises:
        InvalidDatasetError: fewer than ``min_classes`` classes have enough samples.
    """
    needed = sampling.per_class + sampling.test_per_class
    counts = np.bincount(pool.labels, minlength=pool.description.num_classes)
    eligible = np.flatnonzero(counts >= needed)
    if len(eligible) < sampling.min_classes:
        raise InvalidDatasetError(
            f"dataset '{pool.name}' has {len(eligible)} class(es) with at least {needed} samples (per_class + "
            f"test_per_class); tasks need {sampling.min_classes}: lower --per-class / --test-per-class or add samples"
        )
    small = [pool.description.label_names[c] for c in np.flatnonzero(counts < needed)]
    if small:
        logger.warning(
            "dataset '%s': %d class(es) have fewer than %d samples and are left out of its tasks (%s)",
            pool.name,
            len(small),
            needed,
            ", ".join(small[:5]),
        )
    largest = len(eligible) if sampling.max_classes is None else min(sampling.max_classes, len(eligible))
    by_class = {int(c): np.flatnonzero(pool.labels == c) for c in eligible}
    tasks = []
    for i in range(sampling.tasks_per_dataset):
        rng = np.random.default_rng([sampling.seed, zlib.crc32(pool.name.encode("utf-8")), i])
        size = int(rng.integers(sampling.min_classes, largest + 1))
        classes = tuple(sorted(int(c) for c in rng.choice(eligible, size=size, replace=False)))
        train: list[int] = []
        test: list[int] = []
        for c in classes:
            order = rng.permutation(by_class[c])
            train += [int(j) for j in order[: sampling.per_class]]
            test += [int(j) for j in order[sampling.per_class : needed]]
        tasks.append(TrainingTask(f"{pool.name}:{i:04d}", pool.name, classes, tuple(train), tuple(test)))
    return tasks


def pool_digest(inputs: list[Any], labels: np.ndarray) -> str:
    """SHA-256 of the labels and of each input's content (text bytes, or image mode, size and pixels)."""
    digest = hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    for value in inputs:
        if isinstance(value, str):
            digest.update(b"t" + value.encode("utf-8") + b"\0")
        else:
            digest.update(f"i{value.mode}{value.size}".encode() + value.tobytes())
    return digest.hexdigest()
