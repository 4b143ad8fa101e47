"""The interface every ranker implements: score candidates for one task, higher is better."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

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
