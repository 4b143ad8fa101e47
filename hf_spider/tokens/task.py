"""A target task, described (:class:`TaskDescription`) and summarised into vectors (:class:`TaskTokens`).

Model Spider compares a new task with the training tasks through *task tokens*: per-class prototypes of a few samples
encoded by one general encoder, the embeddings of the class names, and dataset statistics. A task known only by its
label names (for example from a Hub dataset card) still has the last two, so it can be ranked before any download.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Modality = Literal["image", "text"]
MODALITIES: tuple[Modality, ...] = ("image", "text")


@dataclass(frozen=True)
class TaskDescription:
    """What is known about a target task before anything is encoded.

    Args:
        name: a human-readable name (dataset id, folder name, ...).
        modality: ``"image"`` or ``"text"``.
        label_names: class names ordered by label id.
        num_examples: examples per split, e.g. ``{"train": 1000}``; empty when unknown.
        label_column: the column holding the labels, ``None`` when the task has no samples.
        input_column: the column holding images or texts, ``None`` when the task has no samples.
        source: where the samples come from (a local path, a Hub dataset id with config and split), ``None`` if none.
        class_counts: examples per class in the split used, ordered like ``label_names``; ``None`` when unknown.
        description: what the task is, in the user's words (``hf-spider rank --task``), ``None`` when not given; the
            task-aware model reads it beside the label names and samples (:mod:`hf_spider.scorer.task_aware`).
        local: the samples come from a local file or folder, so ``source`` is a name the user chose, never a Hub
            dataset's: a folder called ``emotion`` must not be read as ``dair-ai/emotion`` (:attr:`hub_dataset`).
    """

    name: str
    modality: Modality
    label_names: tuple[str, ...]
    num_examples: dict[str, int] = field(default_factory=dict)
    label_column: str | None = None
    input_column: str | None = None
    source: str | None = None
    class_counts: tuple[int, ...] | None = None
    description: str | None = None
    local: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def hub_dataset(self) -> str | None:
        """The Hub dataset (``id`` or ``id:config``) the samples come from; ``None`` for local data or none. What a
        model's card lists as training data, or MTEB's metadata, is matched against this alone."""
        return None if self.local else self.source

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label_names"] = list(self.label_names)
        out["class_counts"] = None if self.class_counts is None else list(self.class_counts)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskDescription:
        data = dict(data)
        data["label_names"] = tuple(data["label_names"])
        if data.get("class_counts") is not None:
            data["class_counts"] = tuple(int(c) for c in data["class_counts"])
        return cls(**data)


@dataclass(frozen=True, eq=False)
class TaskTokens:
    """The vectors that stand for a task in the scorer; every part may be missing (the scorer masks it).

    Args:
        description: the task these tokens summarise.
        prototypes: ``[C, D]`` mean of L2-normalised sample embeddings per class, ``None`` without samples.
        label_embeddings: ``[C, D]`` text-encoder embeddings of the class names, ``None`` when not computed.
        statistics: ``[S]`` dataset statistics, see :func:`task_statistics`.
        encoder: ``id@revision`` of the encoders used per modality, e.g. ``{"text": "<repo id>@<commit sha>"}``.
        sampling: how samples were drawn (``{"per_class": 10, "seed": 0}``) so a ranking can be reproduced.
    """

    description: TaskDescription
    prototypes: np.ndarray | None = None
    label_embeddings: np.ndarray | None = None
    statistics: np.ndarray | None = None
    encoder: dict[str, str] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        """Arrays plus a JSON header, for ``numpy.savez`` (the cache format)."""
        header = {"description": self.description.to_dict(), "encoder": self.encoder, "sampling": self.sampling}
        arrays = {"header": np.array(json.dumps(header, sort_keys=True))}
        for name in ("prototypes", "label_embeddings", "statistics"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        return arrays

    @classmethod
    def from_npz_dict(cls, arrays: dict[str, np.ndarray]) -> TaskTokens:
        header = json.loads(str(arrays["header"]))
        return cls(
            description=TaskDescription.from_dict(header["description"]),
            prototypes=arrays.get("prototypes"),
            label_embeddings=arrays.get("label_embeddings"),
            statistics=arrays.get("statistics"),
            encoder=header["encoder"],
            sampling=header["sampling"],
        )


STATISTICS_NAMES = ("log_num_classes", "log_num_train_examples", "class_balance", "is_image", "is_text")


def task_statistics(description: TaskDescription) -> np.ndarray:
    """``[5]`` statistics token: log #classes, log #training examples (0 if unknown), class balance, modality one-hot.

    Class balance is the normalised entropy of the class counts (1 = perfectly balanced; 1 when counts are unknown).
    """
    train = description.num_examples.get("train", sum(description.num_examples.values()))
    balance = 1.0
    if description.class_counts and len(description.class_counts) > 1:
        p = np.asarray(description.class_counts, dtype=np.float64)
        p = p[p > 0] / p.sum()
        balance = float(-(p * np.log(p)).sum() / np.log(len(description.class_counts)))
    return np.array(
        [
            np.log(max(description.num_classes, 1)),
            np.log1p(train),
            balance,
            float(description.modality == "image"),
            float(description.modality == "text"),
        ],
        dtype=np.float32,
    )
