"""Stage two end to end: run the best stage-one candidates on the task's samples, then fuse (:mod:`.fusion`).

The order of a re-ranked shortlist is: the candidates that were re-ranked, by their fused score (with successive
halving: those that ran on more samples first); then the candidates that were not run (beyond ``k``, or left unrun
by the time budget), in stage-one order; then those shown to be broken, in stage-one order: the ones that failed
here and the ones stage one could not read. A failed candidate never outranks one that was not shown to be broken,
run or not. Every number needed to replay the fusion without running a model again
is in the shortlist: each entry's ``estimator_scores``, ``evidence`` and ``confidence``, and
``metadata["rerank"]["stage_one_scores"]`` (see :func:`fusion_inputs`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import NothingRerankedError, RerankBudgetError
from ..hub.records import ModelRecord
from ..outputs.shortlist import Shortlist, ShortlistEntry
from ..ranking import samples_not_read_note
from ..tokens.sampling import DEFAULT_PER_CLASS
from .distributed import Deadline, RerankResult, estimator_spec, partial_state, rerank_candidates
from .fusion import DEFAULT_ESTIMATORS, FUSION_PARAMETERS, FusionParameters, fuse
from .halving import kept, per_class_of_rounds
from .options import ForwardOptions
from .samples import load_samples

#: How estimators are named in shortlist reasons ("re-ranked: LogME 0.91").
DISPLAY_NAMES = {"logme": "LogME", "reg_hscore": "Reg-H-Score", "hscore": "H-Score", "leep": "LEEP", "nce": "NCE"}


def rerank_shortlist(
    shortlist: Shortlist,
    task: Any,
    candidates: Sequence[ModelRecord] = (),
    *,
    k: int = 5,
    estimators: str | Sequence[str] = DEFAULT_ESTIMATORS,
    max_forward_passes: int | None = None,
    budget_seconds: float | None = None,
    halving_rounds: int = 1,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    options: ForwardOptions | None = None,
    parameters: FusionParameters | None = None,
) -> Shortlist:
    """Stage two of Model Spider: run the best ``k`` candidates on the task's samples and fuse the results.

    Runs unchanged in one process or under ``accelerate launch`` (candidates are split over the processes and every
    process returns the same shortlist). The fusion (:func:`~hf_spider.rerank.fusion.fuse`) weighs each candidate's
    stage-one score by what it rests on (its ``evidence`` / ``confidence``) against the estimators.

    After re-ranking, an entry's ``score`` is its final position as a fraction of the list (1 = first, 0 = last), so
    the column reads the same for every entry whether it was re-ranked, failed or not run; the fused values are in
    ``metadata["rerank"]["fused_scores"]`` and each re-ranked entry's reason says what moved it. Stage one's note
    that it did not read the dataset's samples now says how many candidates stage two re-ranked on them.

    Args:
        shortlist: the stage-one shortlist (best first).
        task: the samples: :class:`TaskSamples`, a ``TaskSource``, a ``datasets`` object, a local path or a Hub id.
        candidates: records of the shortlisted models (SHA, size); an entry without one is fetched at its ``sha``.
        k: how many of the best stage-one candidates to run.
        estimators: registered estimator name(s) (``hf_spider.estimators.ESTIMATORS``); several form one view.
        max_forward_passes: a budget of samples times candidates over all rounds; ``k`` shrinks to fit it.
        budget_seconds: a time budget for the whole call, samples included: no candidate starts when it is expected
            to end past it (expected from the mean cost of those run so far; the first always runs). Those left
            unrun keep their place from the last round they ran in, or their stage-one place.
        halving_rounds: anytime successive halving: round ``r`` of ``R`` runs the survivors on
            ``per_class / 2**(R-1-r)`` samples per class and keeps the better half; 1 runs every candidate once.
        per_class, seed: the seeded stratified sample every candidate is run on.
        options: fetching, safety and batching options (remote code and pickle weights are refused by default).
        parameters: the fusion's credited reliabilities (default: the fitted ``FUSION_PARAMETERS``).

    Raises:
        ValueError: ``k`` or ``halving_rounds`` below 1, or no estimator.
        RerankBudgetError: a budget too small for one candidate.
        EstimatorInputError: an estimator is not registered.
        InvalidDatasetError: the task's samples cannot be read.
        NothingRerankedError: not one candidate could be run (each one's reason is in ``failures``).
    """
    names = (estimators,) if isinstance(estimators, str) else tuple(dict.fromkeys(estimators))
    if k < 1 or halving_rounds < 1:
        raise ValueError(f"k={k}, halving_rounds={halving_rounds}: both must be >= 1")
    if not names:
        raise ValueError("estimators is empty; pass at least one, such as 'logme'")
    for name in names:
        estimator_spec(name)
    state = partial_state()
    state.wait_for_everyone()  # the clock starts when every process is ready, not while a peer still starts up
    start = time.perf_counter()
    deadline_at = time.time() + budget_seconds if budget_seconds is not None else None
    with state.main_process_first():  # the first process fills the datasets cache, the others read it
        samples = load_samples(task, per_class=per_class, seed=seed)
    held = int(np.bincount(samples.labels).max())  # samples given ready-made may hold another count per class
    rounds = [samples.head(per_class) for per_class in per_class_of_rounds(held, halving_rounds)]
    pool = [e for e in shortlist if e.error is None][:k]
    if max_forward_passes is not None:
        pool = pool[: _affordable(len(pool), [len(s.labels) for s in rounds], max_forward_passes)]
    by_id = {c.repo_id: c for c in candidates}
    entries = {e.model_id: e for e in shortlist}
    alive = [by_id.get(e.model_id) or ModelRecord(e.model_id, sha=e.sha, num_parameters=e.num_parameters) for e in pool]
    sections: list[list[tuple[RerankResult, float]]] = []  # best last: survivors, then those dropped latest
    failed: dict[str, RerankResult] = {}
    survivors: list[tuple[RerankResult, float]] = []  # the previous round's kept candidates, best first
    forward_seconds = load_seconds = 0.0
    cached = skipped = 0
    expected = 0.0  # one candidate's cost on this round's samples, from the previous round
    for r, probe in enumerate(rounds):
        deadline = Deadline(deadline_at, expected) if deadline_at is not None else None
        results = rerank_candidates(alive, probe, estimators=names, options=options, deadline=deadline)
        forward_seconds += sum(x.forward_seconds for x in results)
        load_seconds += sum(x.load_seconds for x in results)
        cached += sum(x.cached for x in results)
        skipped += sum(x.skipped for x in results)
        failed.update({x.model_id: x for x in results if x.error is not None})
        unrun = {x.model_id for x in results if x.skipped}
        sections.append([(x, score) for x, score in survivors if x.model_id in unrun])  # below this round's
        ok = [x for x in results if x.error is None and not x.skipped]
        if not ok:
            break
        costs = [x.total_seconds for x in ok if not x.cached]
        if costs and r + 1 < len(rounds):
            expected = float(np.mean(costs)) * len(rounds[r + 1].labels) / len(probe.labels)
        fused = fuse(
            [entries[x.model_id].score for x in ok],
            {name: [x.estimator_scores.get(name, math.nan) for x in ok] for name in names},
            evidence=[entries[x.model_id].evidence for x in ok],
            confidence=[entries[x.model_id].confidence for x in ok],
            parameters=parameters,
        )
        ranked = [(ok[i], float(fused.scores[i])) for i in fused.order]
        last = r == len(rounds) - 1
        keep = kept(len(ranked), last=last)
        sections.append(ranked if last else ranked[keep:])  # survivors of the last round, else the dropped half
        survivors = ranked[:keep]
        keep_ids = {x.model_id for x, _ in survivors}
        alive = [c for c in alive if c.repo_id in keep_ids]
    reranked = [(x, score) for section in reversed(sections) for x, score in section]
    if not reranked:
        raise NothingRerankedError({m: x.error or "" for m, x in failed.items()})
    stage_one_rank = {e.model_id: i for i, e in enumerate(shortlist, start=1)}
    ran = {x.model_id for x, _ in reranked}
    broken = [replace(e, error=failed[e.model_id].error) if e.model_id in failed else e for e in shortlist]
    broken = [e for e in broken if e.error is not None and e.model_id not in ran]
    order = [
        *(_reranked_entry(entries[x.model_id], x, names, stage_one_rank[x.model_id]) for x, _ in reranked),
        *(e for e in shortlist if e.model_id not in ran and e.model_id not in failed and e.error is None),
        *broken,  # failed here or unread by stage one: below every candidate not shown to be broken
    ]
    n = len(order)
    # the stage-one percentile no longer orders the list: the displays show the final position instead
    final = [replace(e, score=1.0 - i / max(n - 1, 1), expected_percentile=None) for i, e in enumerate(order)]
    metadata = {
        **shortlist.metadata,
        **_notes_after_rerank(shortlist.metadata, len(reranked)),
        "rerank": {
            "k": len(pool),
            "reranked": len(reranked),
            "failed": len(failed),
            "cached": cached,
            "skipped": skipped,
            "budget_seconds": budget_seconds,
            "estimators": list(names),
            "fusion": _describe(parameters or FUSION_PARAMETERS),
            "stage_one_scores": {e.model_id: e.score for e in pool},
            "stage_one_ranker": shortlist.ranker,
            "fused_scores": {x.model_id: score for x, score in reranked},
            "score": "final position as a fraction of the list (1 = first)",
            "halving_rounds": halving_rounds,
            "sampling": samples.sampling,
            "num_samples": len(samples.labels),
            "processes": state.num_processes,
            "forward_seconds": forward_seconds,
            "load_seconds": load_seconds,
            "wall_seconds": time.perf_counter() - start,
        },
    }
    out = shortlist.with_entries(final)
    return replace(out, ranker=f"{shortlist.ranker}+{'+'.join(names)}", metadata=metadata)


def _notes_after_rerank(metadata: Mapping[str, Any], reranked: int) -> dict[str, list[str]]:
    """Stage one's notes with the one saying it did not read the dataset's samples now saying that stage two ran
    ``reranked`` candidates on them (:func:`~hf_spider.ranking.samples_not_read_note`); empty without notes."""
    if "notes" not in metadata:
        return {}
    stage_one = samples_not_read_note()
    return {"notes": [samples_not_read_note(reranked) if n == stage_one else n for n in metadata["notes"]]}


def fusion_inputs(shortlist: Shortlist) -> tuple[list[str], dict[str, Any]]:
    """The re-ranked model ids (stage-one order) and the :func:`~hf_spider.rerank.fusion.fuse` arguments recorded for
    them in a re-ranked shortlist.

    ``ids, inputs = fusion_inputs(shortlist); fuse(**inputs)`` reproduces the order of the re-ranked candidates (of
    the last round, with successive halving); pass other ``parameters`` or drop an estimator from
    ``inputs["estimator_scores"]`` to re-mix them without running a model again.

    Raises:
        ValueError: the shortlist was not re-ranked.
    """
    meta = shortlist.metadata.get("rerank")
    if not meta or "stage_one_scores" not in meta:
        raise ValueError("this shortlist was not re-ranked; run rerank_shortlist (hf-spider rerank) first")
    entries = {e.model_id: e for e in shortlist}
    stage_one = meta["stage_one_scores"]
    ids = sorted(
        (m for m in stage_one if m in entries and entries[m].error is None and entries[m].estimator_scores),
        key=lambda m: -stage_one[m],
    )
    return ids, {
        "stage_one": [stage_one[m] for m in ids],
        "estimator_scores": {
            name: [entries[m].estimator_scores.get(name, math.nan) for m in ids] for name in meta["estimators"]
        },
        "evidence": [entries[m].evidence for m in ids],
        "confidence": [entries[m].confidence for m in ids],
    }


def _reranked_entry(
    entry: ShortlistEntry, result: RerankResult, names: Sequence[str], stage_rank: int
) -> ShortlistEntry:
    values = ", ".join(
        f"{DISPLAY_NAMES.get(n, n)} {result.estimator_scores[n]:.3g}" for n in names if n in result.estimator_scores
    )
    note = f"re-ranked: {values} on {result.num_samples} samples (stage one #{stage_rank})"
    return replace(entry, reasons=(note, *entry.reasons), estimator_scores=dict(result.estimator_scores))


def _describe(parameters: FusionParameters) -> dict[str, Any]:
    return {
        "evidence": dict(parameters.evidence),
        "estimators": dict(parameters.estimators),
        "unknown_estimator": parameters.unknown_estimator,
        "agreement": parameters.agreement,
        "fitted": parameters == FUSION_PARAMETERS,
    }


def _affordable(k: int, samples_per_round: Sequence[int], budget: int) -> int:
    """The largest candidate count whose successive-halving rounds fit ``budget`` forward passes (samples).

    Raises:
        RerankBudgetError: not even one candidate fits.
    """
    for n in range(k, 0, -1):
        cost, alive = 0, n
        for size in samples_per_round:
            cost, alive = cost + alive * size, kept(alive, last=False)
        if cost <= budget:
            return n
    least = sum(samples_per_round)
    raise RerankBudgetError(
        f"a budget of {budget} forward passes (--max-forward-passes) does not cover one candidate on "
        f"{samples_per_round[-1]} samples; raise it to {least} or more"
    )
