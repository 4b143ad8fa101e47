"""How the re-ranked score mixes the stage-one score with a forward-pass estimator, learned on recorded fine-tuning.

Both scores are z-scored among the re-ranked candidates (their scales are unrelated: a ranker's fitness, LogME's
evidence per sample) and mixed as ``w * z(estimator) + (1 - w) * z(stage one)``. The weight ``w`` is not tuned on any
test target: :func:`fit_estimator_weight` picks it on the TransferGraph records, where LogME and Reg-H-Score were
computed by forward passes for every (model, target), with the collaborative prior (leave-one-target-out) standing in
for the stage-one score. The same function reports the leave-one-target-out weighted tau of the mix, of the estimator
alone and of the prior alone, so the choice can be checked (``benchmarks/rerank_bench.py`` prints them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..outputs.shortlist import Shortlist
from ..rankers.baselines import CollaborativePrior
from ..tokens.sampling import DEFAULT_PER_CLASS
from ..tokens.task import TaskDescription, TaskTokens
from .distributed import RerankResult, estimator_spec, partial_state, rerank_candidates
from .forward import ForwardOptions
from .samples import load_samples

#: Candidate weights of the estimator: 0 = stage one only, 1 = the estimator only.
WEIGHT_GRID: tuple[float, ...] = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))
#: ``fit_estimator_weight(load_transfergraph(root).for_modality(m), estimator=e).weight`` on the shared TransferGraph
#: records (commit 0458aff); ``tests/test_rerank.py`` recomputes them, so they cannot drift from the records.
ESTIMATOR_WEIGHTS: dict[tuple[str, str], float] = {
    ("image", "logme"): 0.4,
    ("image", "reg_hscore"): 0.4,
    ("text", "logme"): 0.1,
    ("text", "reg_hscore"): 0.1,
}
#: Registry name -> name in the TransferGraph records, for the estimators the records hold.
RECORD_NAMES = {"logme": "logme", "reg_hscore": "reg_h_score"}
#: How estimators are named in shortlist reasons ("re-ranked: LogME 0.91").
DISPLAY_NAMES = {"logme": "LogME", "reg_hscore": "Reg-H-Score", "hscore": "H-Score", "leep": "LEEP", "nce": "NCE"}
#: Estimator whose weight stands in for an estimator without records (LEEP, NCE, ... are not in TransferGraph).
FALLBACK_ESTIMATOR = "logme"


@dataclass(frozen=True)
class WeightFit:
    """The chosen weight and how well each choice ranks, as mean weighted tau over the records' targets.

    Args:
        weight: the weight maximising the mean tau over all targets (the one to ship).
        loto_tau: mean tau on each target of the weight chosen without that target (an honest estimate).
        estimator_tau / prior_tau: mean tau of the estimator alone (``w = 1``) and of the prior alone (``w = 0``).
        targets: the targets evaluated.
    """

    weight: float
    loto_tau: float
    estimator_tau: float
    prior_tau: float
    targets: tuple[str, ...]


def zscore(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``[K]`` values centred and scaled to unit variance; all zeros when they do not vary (nothing to tell apart)."""
    x = np.asarray(values, dtype=np.float64)
    spread = x.std()
    return np.zeros_like(x) if not np.isfinite(spread) or spread == 0 else (x - x.mean()) / spread


def combine_scores(
    stage_one: Sequence[float] | np.ndarray, estimator: Sequence[float] | np.ndarray, weight: float
) -> np.ndarray:
    """``[K]`` final scores: ``weight * z(estimator) + (1 - weight) * z(stage_one)``, higher is better."""
    return weight * zscore(estimator) + (1.0 - weight) * zscore(stage_one)


def estimator_weight(modality: str, estimator: str) -> tuple[float, str]:
    """The recorded weight of ``estimator`` for ``modality`` and where it comes from (shown in shortlist metadata)."""
    if (modality, estimator) in ESTIMATOR_WEIGHTS:
        return ESTIMATOR_WEIGHTS[modality, estimator], f"fit on TransferGraph {modality} records for {estimator}"
    weight = ESTIMATOR_WEIGHTS.get((modality, FALLBACK_ESTIMATOR), 0.5)
    return weight, f"no records for {estimator}; using the {FALLBACK_ESTIMATOR} weight of TransferGraph {modality}"


def fit_estimator_weight(
    records: FinetuneRecords, *, estimator: str = "logme", grid: Sequence[float] = WEIGHT_GRID
) -> WeightFit:
    """Choose the estimator weight on recorded fine-tuning results (one modality), leave-one-target-out.

    For every target, the stage-one stand-in is the collaborative prior computed without that target, and nothing
    recorded on a held-out target is used to choose the weight that is evaluated on it.

    Raises:
        ValueError: the records hold no score of ``estimator`` for any target with accuracies.
    """
    targets = tuple(
        t for t in records.targets if ((records.estimator_scores.target == t) & _is(records, estimator)).any()
    )
    if not targets:
        raise ValueError(f"the records hold no '{estimator}' scores; pass records with estimator_scores for it")
    taus = {t: _taus(records, t, estimator, grid) for t in targets}  # target -> [len(grid)] tau of each weight
    held_out = []
    for t in targets:  # choose the weight as if t were new: no record of t, not even in the others' priors
        rest = records.without_target(t)
        others = [_taus(rest, o, estimator, grid) for o in targets if o != t]
        held_out.append(taus[t][_argmax_mean(others or [taus[t]])])
    mean = np.mean([taus[t] for t in targets], axis=0)
    return WeightFit(
        weight=float(grid[int(np.argmax(mean))]),
        loto_tau=float(np.mean(held_out)),
        estimator_tau=float(_tau_at(grid, mean, 1.0)),
        prior_tau=float(_tau_at(grid, mean, 0.0)),
        targets=targets,
    )


def _taus(records: FinetuneRecords, target: str, estimator: str, grid: Sequence[float]) -> np.ndarray:
    """``[len(grid)]`` weighted tau of the mix on ``target`` for each weight (prior learned without the target)."""
    from scipy.stats import weightedtau

    scores = records.estimator_scores
    est = scores[(scores.target == target) & _is(records, estimator)].groupby("model").score.mean()
    acc = records.accuracy[records.accuracy.target == target].groupby("model").accuracy.max()
    models = sorted(set(est.index) & set(acc.index))
    # The prior reads only the task's name; the label names are required by the type but unused here.
    task = TaskTokens(TaskDescription(name=target, modality="text", label_names=("a", "b")))
    prior = CollaborativePrior(records.without_target(target)).score(task, [ModelRecord(repo_id=m) for m in models])
    actual = acc[models].to_numpy()
    return np.array([weightedtau(actual, combine_scores(prior, est[models].to_numpy(), w)).statistic for w in grid])


def _is(records: FinetuneRecords, estimator: str) -> np.ndarray:
    return (records.estimator_scores.estimator == estimator).to_numpy()


def _argmax_mean(rows: list[np.ndarray]) -> int:
    return int(np.argmax(np.mean(rows, axis=0)))


def _tau_at(grid: Sequence[float], mean: np.ndarray, weight: float) -> float:
    return float(mean[list(grid).index(weight)])


def rerank_shortlist(
    shortlist: Shortlist,
    task: Any,
    candidates: Sequence[ModelRecord] = (),
    *,
    k: int = 5,
    estimator: str = "logme",
    max_forward_passes: int | None = None,
    halving_rounds: int = 1,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    options: ForwardOptions | None = None,
) -> Shortlist:
    """Stage two of Model Spider: run the best ``k`` candidates on the task's samples and re-score them.

    Runs unchanged in one process or under ``accelerate launch`` (candidates are split over the processes and every
    process returns the same shortlist). Re-ranked entries come first, ordered by :func:`combine_scores` of their
    stage-one score and the estimator, with reasons such as ``"re-ranked: LogME 0.91"``; then the candidates that
    were not re-ranked, in their stage-one order; then those that failed, with ``error`` saying why.

    Args:
        shortlist: the stage-one shortlist (best first).
        task: the samples: :class:`TaskSamples`, a ``TaskSource``, a ``datasets`` object, a local path or a Hub id.
        candidates: records of the shortlisted models (SHA, size); an entry without one is fetched at its ``sha``.
        k: how many of the best stage-one candidates to run.
        estimator: a registered estimator (``hf_spider.estimators.ESTIMATORS``); LogME by default.
        max_forward_passes: a budget of samples times candidates over all rounds; ``k`` shrinks to fit it.
        halving_rounds: anytime successive halving: round ``r`` of ``R`` runs the survivors on
            ``per_class / 2**(R-1-r)`` samples per class and keeps the better half; 1 runs every candidate once.
        per_class, seed: the seeded stratified sample every candidate is run on.
        options: fetching, safety and batching options (remote code and pickle weights are refused by default).

    Raises:
        ValueError: ``k`` or ``halving_rounds`` below 1, or a budget too small for one candidate.
        EstimatorInputError: ``estimator`` is not registered.
        InvalidDatasetError: the task's samples cannot be read.
    """
    if k < 1 or halving_rounds < 1:
        raise ValueError(f"k={k}, halving_rounds={halving_rounds}: both must be >= 1")
    spec = estimator_spec(estimator)
    state = partial_state()
    start = time.perf_counter()
    with state.main_process_first():  # the first process fills the datasets cache, the others read it
        samples = load_samples(task, per_class=per_class, seed=seed)
    held = int(np.bincount(samples.labels).max())  # samples given ready-made may hold another count per class
    rounds = [samples.head(max(1, held >> (halving_rounds - 1 - r))) for r in range(halving_rounds)]
    pool = [e for e in shortlist if e.error is None][:k]
    if max_forward_passes is not None:
        pool = pool[: _affordable(len(pool), [len(s.labels) for s in rounds], max_forward_passes)]
    by_id = {c.repo_id: c for c in candidates}
    stage_one = {e.model_id: e.score for e in pool}
    weight, weight_source = estimator_weight(samples.description.modality, RECORD_NAMES.get(estimator, estimator))
    sign = 1.0 if spec.higher_is_better else -1.0
    alive = [by_id.get(e.model_id) or ModelRecord(e.model_id, sha=e.sha, num_parameters=e.num_parameters) for e in pool]
    sections: list[list[tuple[RerankResult, float]]] = []  # best last: survivors, then those dropped latest
    failed: list[RerankResult] = []
    forward_seconds = load_seconds = 0.0
    for r, probe in enumerate(rounds):
        results = rerank_candidates(alive, probe, estimators=(estimator,), options=options)
        forward_seconds += sum(x.forward_seconds for x in results)
        load_seconds += sum(x.load_seconds for x in results)
        failed += [x for x in results if x.error is not None]
        ok = [x for x in results if x.error is None]
        mixed = combine_scores(
            [stage_one[x.model_id] for x in ok], [sign * x.estimator_scores[estimator] for x in ok], weight
        )
        ranked = sorted(zip(ok, mixed.tolist(), strict=True), key=lambda p: (-p[1], p[0].model_id))
        last = r == len(rounds) - 1
        keep = len(ranked) if last else (len(ranked) + 1) // 2
        sections.append(ranked if last else ranked[keep:])  # survivors of the last round, else the dropped half
        keep_ids = {x.model_id for x, _ in ranked[:keep]}
        alive = [c for c in alive if c.repo_id in keep_ids]
    entries = {e.model_id: e for e in shortlist}
    label = DISPLAY_NAMES.get(estimator, estimator)
    reranked = [
        replace(
            entries[x.model_id],
            score=score,
            reasons=(
                f"re-ranked: {label} {x.estimator_scores[estimator]:.2f} on {x.num_samples} samples",
                *entries[x.model_id].reasons,
            ),
            estimator_scores=dict(x.estimator_scores),
        )
        for section in reversed(sections)
        for x, score in section
    ]
    done = {e.model_id for e in reranked} | {x.model_id for x in failed}
    rest = [e for e in shortlist if e.model_id not in done]
    errors = [replace(entries[x.model_id], error=x.error) for x in failed]
    metadata = {
        **shortlist.metadata,
        "rerank": {
            "k": len(pool),
            "estimator": estimator,
            "weight": weight,
            "weight_source": weight_source,
            "halving_rounds": halving_rounds,
            "sampling": samples.sampling,
            "num_samples": len(samples.labels),
            "processes": state.num_processes,
            "forward_seconds": forward_seconds,
            "load_seconds": load_seconds,
            "wall_seconds": time.perf_counter() - start,
        },
    }
    out = shortlist.with_entries([*reranked, *rest, *errors])
    return replace(out, ranker=f"{shortlist.ranker}+{estimator}", metadata=metadata)


def _affordable(k: int, samples_per_round: Sequence[int], budget: int) -> int:
    """The largest candidate count whose successive-halving rounds fit ``budget`` forward passes (samples).

    Raises:
        ValueError: not even one candidate fits.
    """
    for n in range(k, 0, -1):
        cost, alive = 0, n
        for size in samples_per_round:
            cost, alive = cost + alive * size, (alive + 1) // 2
        if cost <= budget:
            return n
    raise ValueError(
        f"max_forward_passes={budget} does not cover one candidate on {samples_per_round[-1]} samples; raise it"
    )
