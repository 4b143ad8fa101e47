"""The interface every ranker implements: score candidates for one task, higher is better."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..hub.records import ModelRecord
from ..tokens.task import TaskTokens

if TYPE_CHECKING:
    from ..finetune_records import FinetuneRecords
    from ..tokens.facts import ImageNetFacts


@runtime_checkable
class Ranker(Protocol):
    """Scores a candidate pool for a task without running any candidate (stage one of Model Spider)."""

    #: Short name shown in shortlists and benchmark tables.
    name: str

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates)]`` fitness scores; only their order within one call is meaningful."""
        ...


@dataclass(frozen=True)
class Explained:
    """Scores of a candidate pool with what each rests on (see :class:`ExplainingRanker`).

    Args:
        scores: ``[N]`` expected accuracy percentiles in [0, 1] (a calibrated scale, comparable across tasks).
        evidence: per candidate, one of ``hf_spider.outputs.shortlist.EVIDENCE_KINDS``.
        confidence: ``[N]`` how far each score can be trusted, in [0, 1].
        details: per candidate, a one-line reason (``"lineage: google/vit-base-patch16-224"``).
    """

    scores: np.ndarray
    evidence: tuple[str, ...]
    confidence: np.ndarray
    details: tuple[str, ...]


def evidence_detail(kind: str, *, records: int, ancestor: str, facts: ImageNetFacts | None) -> str:
    """The one-line reason of :attr:`Explained.details` for a candidate whose score rests on ``kind`` of evidence.

    One wording for the torch scorer and its numpy twin, so a shortlist reads the same whichever scored it.

    Args:
        kind: one of ``hf_spider.outputs.shortlist.EVIDENCE_KINDS``.
        records: training tasks the candidate has records on (read for ``"records"``).
        ancestor: the recorded ancestor's repo id (read for ``"lineage"``).
        facts: the candidate's ImageNet facts, ``None`` when it has none (read for ``"facts"``).
    """
    if kind == "records":
        return f"records on {records} training task(s)"
    if kind == "lineage":
        return f"lineage: {ancestor}"
    if kind == "facts" and facts is not None:
        return f"ImageNet top-1 {facts.top1:.1f} ({facts.source}: {facts.matched})"
    if kind == "facts":
        return "pre-training source"
    return "architecture and size" if kind == "content" else "size only"


@runtime_checkable
class ExplainingRanker(Ranker, Protocol):
    """A ranker whose scores are calibrated percentiles and that says what each rests on (the Model Spider scorer)."""

    def explain(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> Explained:
        """Scores of ``candidates`` for ``task`` with their evidence (``score`` returns ``explain(...).scores``)."""
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
