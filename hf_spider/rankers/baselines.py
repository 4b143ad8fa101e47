"""Transparent baselines that every learned ranker must beat (and the fallbacks when nothing better is known)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..finetune_records import FinetuneRecords, normalised_accuracy
from ..hub.records import ModelRecord
from ..tokens.task import TaskTokens
from .base import Ranker


@dataclass
class SizePrior:
    """Bigger models transfer better: score = log parameter count (unknown sizes rank last)."""

    name: str = "size_prior"

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return np.array([math.log(c.num_parameters) if c.num_parameters else -np.inf for c in candidates])


@dataclass
class CollaborativePrior:
    """A model's mean min-max-normalised accuracy over the recorded targets (no target data, no forward pass).

    The target itself is excluded, so this is safe inside a leave-one-target-out evaluation. Models without any
    record fall back to the mean prior of their architecture family, then to the pool mean.
    """

    records: FinetuneRecords
    name: str = "collab_prior"

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        per_model = collaborative_prior(self.records, exclude_target=task.description.name)
        known = [per_model.get(c.repo_id) for c in candidates]
        family: dict[str, list[float]] = {}
        for c, v in zip(candidates, known, strict=True):
            if v is not None and c.model_type:
                family.setdefault(c.model_type, []).append(v)
        pool_mean = float(np.mean([v for v in known if v is not None])) if any(v is not None for v in known) else 0.0
        return np.array(
            [
                v if v is not None else float(np.mean(family.get(c.model_type or "", [pool_mean])))
                for c, v in zip(candidates, known, strict=True)
            ]
        )


@dataclass
class CollabPriorSizeFallback:
    """Seen models by the collaborative prior, unseen ones by their size, on one scale: percentiles among the
    recorded models.

    The baseline a cold-start estimate must beat in a pool that mixes seen and unseen models (the mixed-pool protocol
    of :mod:`hf_spider.evaluation.protocols`). A model with records is placed where its collaborative prior stands among
    the priors of the recorded models; a model without records where its log parameter count stands among their log
    parameter counts. Both are fractions in [0, 1] of the same population, so the two kinds share one list. A model of
    unknown size and without records ranks below every other.
    """

    name: str = "collab_prior_size_fallback"
    _records: FinetuneRecords | None = field(default=None, repr=False)
    _log_sizes: np.ndarray | None = field(default=None, repr=False)  # sorted, of the recorded models with a size

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> CollabPriorSizeFallback:
        recorded = set(records.accuracy.model)
        self._records = records
        self._log_sizes = np.sort([_log_size(m) for m in models if m.repo_id in recorded and _sized(m)])
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        if self._records is None or self._log_sizes is None:
            raise RuntimeError(f"{self.name}: call fit() before score()")
        per_model = collaborative_prior(self._records, exclude_target=task.description.name)
        priors = np.sort(np.fromiter(per_model.values(), dtype=np.float64))
        scores = []
        for c in candidates:
            if c.repo_id in per_model:
                scores.append(percentile_of(per_model[c.repo_id], priors))
            elif _sized(c) and len(self._log_sizes):
                scores.append(percentile_of(_log_size(c), self._log_sizes))
            else:
                scores.append(-1.0)
        return np.array(scores, dtype=np.float64)


def collaborative_prior(records: FinetuneRecords, *, exclude_target: str | None = None) -> dict[str, float]:
    """Each recorded model's mean min-max-normalised accuracy over the targets of ``records`` except
    ``exclude_target`` (the collaborative prior)."""
    accuracy = records.accuracy
    accuracy = normalised_accuracy(accuracy[accuracy.target != exclude_target])
    return {str(k): float(v) for k, v in accuracy.groupby("model").norm_accuracy.mean().items()}


def percentile_of(value: float, population: np.ndarray) -> float:
    """Where ``value`` stands in the sorted ``population``, in [0, 1]: the share below it, ties counted half
    (``scipy.stats.percentileofscore(kind="mean") / 100``)."""
    below = np.searchsorted(population, value, side="left")
    at_or_below = np.searchsorted(population, value, side="right")
    return float((below + at_or_below) / (2 * len(population)))


def _sized(model: ModelRecord) -> bool:
    return model.num_parameters is not None and model.num_parameters > 0


def _log_size(model: ModelRecord) -> float:
    return math.log(model.num_parameters or 1)


@dataclass
class FittedBaseline:
    """Turns a ranker built from records (the collaborative prior, the size prior) into a trainable ranker, so the
    evaluation protocols can rebuild it from each step's training records."""

    build: Callable[[FinetuneRecords], Ranker]
    name: str = "baseline"
    _ranker: Ranker | None = field(default=None, repr=False)

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> FittedBaseline:
        self._ranker = self.build(records)
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        if self._ranker is None:
            raise RuntimeError(f"{self.name}: call fit() before score()")
        return self._ranker.score(task, candidates)


def trainable_collab_prior() -> FittedBaseline:
    """The collaborative prior, rebuilt from the records it is fitted on."""
    return FittedBaseline(CollaborativePrior, name="collab_prior")


def trainable_size_prior() -> FittedBaseline:
    """The size prior behind the trainable interface (it reads no record)."""
    return FittedBaseline(lambda _records: SizePrior(), name="size_prior")
