"""The labelled samples every re-ranked candidate is run on: a seeded, stratified draw from the task's dataset.

Every process draws the same samples (same seed, same order), so a candidate gives the same features whichever
process runs it: that is what makes 1 and N processes agree to the last digit.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidDatasetError
from ..tokens.sampling import DEFAULT_PER_CLASS, stratified_sample
from ..tokens.sources import TaskSource, load_task_source
from ..tokens.task import TaskDescription

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TaskSamples:
    """Inputs and labels of the probe set.

    Args:
        description: the task they come from (modality, label names).
        inputs: ``[N]`` PIL images (RGB) or non-empty strings, grouped by class.
        labels: ``[N]`` int64 class ids into ``description.label_names``.
        sampling: how they were drawn (``{"per_class": 10, "seed": 0}``), recorded in the shortlist metadata.
    """

    description: TaskDescription
    inputs: list[Any]
    labels: np.ndarray
    sampling: dict[str, Any]

    def head(self, per_class: int) -> TaskSamples:
        """The first ``per_class`` samples of each class: the cheap probe set of an early successive-halving round."""
        keep = np.concatenate([np.flatnonzero(self.labels == c)[:per_class] for c in np.unique(self.labels)])
        keep.sort()
        return TaskSamples(
            self.description,
            [self.inputs[i] for i in keep],
            self.labels[keep],
            {**self.sampling, "per_class": per_class},
        )


def load_samples(
    source: Any,
    *,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    split: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
) -> TaskSamples:
    """Draw ``per_class`` samples of each class from ``source`` (already drawn samples are returned as they are).

    Args:
        source: :class:`TaskSamples`, a :class:`~hf_spider.tokens.sources.TaskSource`, or anything
            :func:`~hf_spider.tokens.sources.load_task_source` reads (a ``datasets`` object, a path, a Hub id).

    Raises:
        InvalidDatasetError: the dataset cannot be read, or a class has no usable sample.
    """
    if isinstance(source, TaskSamples):
        return source
    if not isinstance(source, TaskSource):
        source = load_task_source(source, split=split, label_column=label_column, input_column=input_column)
    description = source.description
    if description.label_column is None or description.input_column is None:
        raise InvalidDatasetError(
            f"task '{description.name}' has no samples (no label or input column); pass a dataset to re-rank on"
        )
    dataset = source.dataset
    if description.modality == "image":  # decode only the drawn rows, and skip the corrupt ones
        import datasets

        dataset = dataset.cast_column(description.input_column, datasets.Image(decode=False))
    index = {name: i for i, name in enumerate(description.label_names)}
    ids = set(range(len(description.label_names)))

    def label_index(value: Any) -> int | None:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in ids:
            return int(value)
        return None if value is None else index.get(str(value))

    sample = stratified_sample(
        dataset,
        label_column=description.label_column,
        input_column=description.input_column,
        label_names=description.label_names,
        label_index=label_index,
        prepare=_prepare_image if description.modality == "image" else _prepare_text,
        per_class=per_class,
        seed=seed,
    )
    return TaskSamples(
        description=description,
        inputs=sample.inputs,
        labels=sample.labels.astype(np.int64),
        sampling={"per_class": per_class, "seed": seed, "skipped": sample.skipped},
    )


def _prepare_text(raw: Any) -> str | None:
    text = str(raw).strip() if raw is not None else ""
    return text or None


def _prepare_image(raw: Any) -> Any:
    """An RGB PIL image from an undecoded ``datasets.Image`` value, ``None`` when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(raw, Image.Image):
            return raw.convert("RGB")
        data = raw.get("bytes")
        image = Image.open(io.BytesIO(data)) if data else Image.open(raw["path"])
        return image.convert("RGB")
    except (OSError, UnidentifiedImageError, KeyError, TypeError) as exc:
        logger.debug("unreadable image skipped: %s", exc)
        return None
