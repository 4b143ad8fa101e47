"""Transparent baselines that every learned ranker must beat (and the fallbacks when nothing better is known)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..finetune_records import FinetuneRecords, normalised_accuracy
from ..hub.records import ModelRecord
from ..tokens.task import TaskTokens


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
        accuracy = self.records.accuracy
        accuracy = normalised_accuracy(accuracy[accuracy.target != task.description.name])
        per_model = accuracy.groupby("model").norm_accuracy.mean().to_dict()
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
