"""The interface every ranker implements: score candidates for one task, higher is better."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..tokens.task import TaskTokens


@runtime_checkable
class Ranker(Protocol):
    """Scores a candidate pool for a task without running any candidate (stage one of Model Spider)."""

    #: Short name shown in shortlists and benchmark tables.
    name: str

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates)]`` fitness scores; only their order within one call is meaningful."""
        ...


@runtime_checkable
class TrainableRanker(Ranker, Protocol):
    """A ranker learned from fine-tuning records (the Model Spider scorer, the graph and Fennec rankers).

    The benchmark's leave-one-target-out protocol calls ``fit`` with every record except the target's, then
    ``score`` on the target: ``fit`` must never see anything recorded on the task it is later asked to rank.
    """

    def fit(
        self,
        records: FinetuneRecords,
        models: Sequence[ModelRecord],
        tasks: Mapping[str, TaskTokens],
    ) -> TrainableRanker:
        """Learn from ``records`` (ground truth of ``models`` on the training ``tasks``); returns ``self``."""
        ...
