"""Stage one end to end: a task, a candidate pool and a ranker in, a :class:`Shortlist` out.

The CLI, the pipeline and the Space all call :func:`rank`, so filters and ordering are the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidIndexError, UnknownCandidateError
from .hub.index import load_bundled_index, read_index
from .hub.records import ModelRecord
from .outputs.shortlist import EVIDENCE_KINDS, Shortlist
from .rankers.base import ExplainingRanker, Ranker
from .tokens.task import TaskTokens


@dataclass(frozen=True)
class CandidateFilter:
    """Which candidates may be ranked. Gated models are excluded by default: a user may not be able to download them.

    Args:
        max_parameters: drop models known to be larger.
        licenses: keep only these licenses (``None`` keeps all).
        libraries: keep only these libraries (``None`` keeps all).
        include_gated: keep gated models.
    """

    max_parameters: int | None = None
    licenses: frozenset[str] | None = None
    libraries: frozenset[str] | None = None
    include_gated: bool = False

    def keep(self, record: ModelRecord) -> bool:
        if record.gated and not self.include_gated:
            return False
        if self.max_parameters is not None and (record.num_parameters or 0) > self.max_parameters:
            return False
        if self.licenses is not None and record.license not in self.licenses:
            return False
        return self.libraries is None or record.library_name in self.libraries


def load_candidates(pool: str | os.PathLike[str] | Sequence[ModelRecord] | None = None) -> list[ModelRecord]:
    """The candidate pool: the bundled index (``None`` / ``"bundled"``), an index file, a folder of Hub-style repos
    (one sub-folder per model with ``config.json`` and ``README.md``), or records given directly."""
    if pool is None or pool == "bundled":
        return load_bundled_index()
    if not isinstance(pool, (str, os.PathLike)):
        return list(pool)
    path = Path(pool)
    if path.is_dir():
        from .hub.local import records_from_dir

        return records_from_dir(path)
    if not path.exists():
        raise InvalidIndexError(
            f"candidate pool '{path}' does not exist; pass an index file, a folder of model repos or 'bundled'"
        )
    return read_index(path)


def select_candidates(
    candidates: Sequence[ModelRecord],
    *,
    modality: str,
    model_ids: Sequence[str] | None = None,
    candidate_filter: CandidateFilter | None = None,
) -> list[ModelRecord]:
    """Candidates of the task's modality (records of unknown modality are kept), by id if given, filtered.

    Raises:
        UnknownCandidateError: an id in ``model_ids`` is not in the pool.
        InvalidIndexError: nothing is left to rank.
    """
    if model_ids is not None:
        by_id = {c.repo_id: c for c in candidates}
        unknown = [m for m in model_ids if m not in by_id]
        if unknown:
            raise UnknownCandidateError(
                f"unknown candidate id(s) {', '.join(unknown)}: not in the candidate pool; check the ids or crawl them"
            )
        candidates = [by_id[m] for m in model_ids]
    kept = [c for c in candidates if c.modality in (modality, None)]
    if candidate_filter is not None:
        kept = [c for c in kept if candidate_filter.keep(c)]
    if not kept:
        raise InvalidIndexError(
            f"no {modality} candidate is left to rank after filtering; widen the filters or use another pool"
        )
    return kept


def rank(
    task: TaskTokens,
    candidates: Sequence[ModelRecord],
    *,
    ranker: Ranker,
    top_k: int | None = None,
) -> Shortlist:
    """Score every candidate with ``ranker`` (one batched call) and return the best ``top_k`` as a shortlist.

    A ranker that explains its scores (:class:`~hf_spider.rankers.base.ExplainingRanker`, the default scorer) fills
    each entry's evidence, confidence, expected percentile and reason; the shortlist's metadata counts the evidence
    kinds over the whole pool, so a pool known mostly by size is visible as such.
    """
    ids = [c.repo_id for c in candidates]
    by_id = {c.repo_id: c for c in candidates}
    extra: dict[str, dict[str, Any]] = {}
    metadata: dict[str, Any] = {"candidates": len(candidates), "modality": task.description.modality}
    if isinstance(ranker, ExplainingRanker):
        explained = ranker.explain(task, candidates)
        scores = explained.scores
        reasons: dict[str, Sequence[str]] = {m: (detail,) for m, detail in zip(ids, explained.details, strict=True)}
        extra = {
            "evidence": dict(zip(ids, explained.evidence, strict=True)),
            "confidence": {m: float(c) for m, c in zip(ids, explained.confidence, strict=True)},
            "expected_percentile": {m: round(100.0 * float(s), 1) for m, s in zip(ids, scores, strict=True)},
        }
        metadata["evidence"] = {k: explained.evidence.count(k) for k in EVIDENCE_KINDS if k in explained.evidence}
        if unseen_modality := [c.repo_id for c in candidates if c.modality is None]:
            metadata["unknown_modality"] = len(unseen_modality)
    else:
        scores = ranker.score(task, candidates)
        reasons = {m: (ranker.name,) for m in ids}
    return Shortlist.from_scores(
        {m: float(s) for m, s in zip(ids, scores, strict=True)},
        task=task.description.name,
        ranker=ranker.name,
        reasons=reasons,
        num_parameters={m: c.num_parameters for m, c in by_id.items()},
        shas={m: c.sha for m, c in by_id.items()},
        top_k=top_k,
        metadata=metadata,
        **extra,
    )


def evidence_note(shortlist: Shortlist) -> str | None:
    """One line when most of the pool is known by its size alone (the ranking then says little), else ``None``."""
    counts = shortlist.metadata.get("evidence") or {}
    total = sum(counts.values())
    if not total or counts.get("size", 0) * 2 <= total:
        return None
    return (
        f"{counts['size']} of {total} candidates are known by their size alone (no records, lineage, ImageNet facts "
        "or architecture): their order says little; crawl their configs and cards (--with-config --with-card) or "
        "re-rank them with forward passes (hf-spider rerank)"
    )


def default_ranker() -> Ranker:
    """The ranker used when none is named: the shipped Model Spider scorer (``hf_spider/data/scorer``)."""
    from .rankers import get_ranker

    return get_ranker()
