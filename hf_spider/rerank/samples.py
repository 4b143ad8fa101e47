"""The labelled samples every re-ranked candidate is run on: a seeded, stratified draw from the task's dataset.

Every process draws the same samples (same seed, same order), so a candidate gives the same features whichever
process runs it: that is what makes 1 and N processes agree to the last digit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tokens.sampling import DEFAULT_PER_CLASS, sample_task
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
        keep = first_per_class(self.labels, per_class)
        return TaskSamples(
            self.description,
            [self.inputs[i] for i in keep],
            self.labels[keep],
            {**self.sampling, "per_class": per_class},
        )


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Sorted indices of the first ``per_class`` entries of each class of ``labels`` (a successive-halving round's
    probe set among the samples; ``scripts/build_fusion_validation.py`` records estimator values on them for
    :func:`hf_spider.rerank.validation.halving_order_scores`)."""
    labels = np.asarray(labels)
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    keep.sort()
    return keep


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
    sample = sample_task(source, per_class=per_class, seed=seed)
    return TaskSamples(
        description=description,
        inputs=sample.inputs,
        labels=sample.labels.astype(np.int64),
        sampling={"per_class": per_class, "seed": seed, "skipped": sample.skipped},
    )
