"""Stage two's fusion: one final order from the stage-one score, what that score rests on, and forward-pass estimators.

Why this form. Stage one and the estimators are two noisy views of the same unknown: how well each candidate will
fine-tune on the task. Their scales are unrelated (a scorer's fitness, LogME's evidence per sample), so each is
read only through its ranks among the re-ranked candidates, as normal scores ``x = Phi^-1((rank - 1/2) / k)``.
Each view is credited with a *reliability* ``rho`` in [0, 1), the rank correlation it is expected to have with the
fine-tuned accuracy. Under the textbook model of independent Gaussian errors the best estimate of a candidate's
standardised accuracy from views ``x_j`` is the precision-weighted posterior mean

    score = sum_j a_j x_j / (1 + sum_j b_j),   a_j = rho_j / (1 - rho_j^2),   b_j = rho_j^2 / (1 - rho_j^2),

so a view counts in proportion to how much it is known to know, and a candidate known only weakly by every view
stays near the middle. Stage one's reliability is set **per candidate**: where stage one knows the model from its
own fine-tuning records it is credited highly; where it knows only the model's size, hardly at all, and the forward
passes decide. That is how the fusion trusts forward passes more exactly where stage one knows least. With ``k = 2``
two candidates swap when the estimators are credited more than stage one is for them.

Query-time agreement (prior-data conflict). Stage one is a prior formed elsewhere; the estimators are measured on
the user's own samples. Under the same model the two views' normal scores correlate as ``r = rho_s rho_e`` (their
errors independent), so the samples themselves say how much stage one knows about *this* task: about ``r / rho_e``.
With ``parameters.agreement`` on, stage one is credited no more than that, ``rho_s <- min(rho_s, max(r, 0) / rho_e)``
(Evans & Moshonov 2006 call a prior the data contradict a prior-data conflict), where ``r`` is the correlation of
the two views' normal scores over the candidates that have both and ``rho_e`` the estimator view's credit. It needs
:data:`MIN_AGREEMENT` candidates; below that nothing is bounded. A stage one the samples confirm keeps its credit, an
order they contradict counts for nothing, and the bound never raises a credit. Whether it is on is chosen by the
validation.

What it reads from stage one (:class:`~hf_spider.outputs.shortlist.ShortlistEntry`):

* ``evidence`` when given: ``FUSION_PARAMETERS.evidence`` (fitted, see below);
* else ``confidence``: taken as the stage-one score's reliability in the sense above (its expected rank correlation
  with fine-tuned accuracy among the re-ranked candidates), clipped to ``[0, MAX_RELIABILITY]``. The default
  scorer's confidences are measured on whole training lists and so are not read where its evidence is given;
* neither: :data:`UNSTATED_RELIABILITY`, nothing. A score that does not say what it rests on (a ranker that fills
  neither field, a shortlist written by another tool) is not assumed to know the task: the forward passes decide and
  stage one only breaks their ties. This is an assumption, not a fit; a stage one that fills ``evidence`` is
  credited by the fit.

Several estimators form one view: the mean of their normal scores, weighted by their credited reliabilities, and
credited with the reliability of the best of them (their errors are strongly correlated: LogME and Reg-H-Score rank
the TransferGraph models alike, Spearman 0.97 to 0.98 per target, so averaging them is not averaging independent
opinions).

Where the numbers come from: never from the targets they are reported on. :func:`hf_spider.rerank.validation.
fit_fusion` chooses every credit, the agreement switch and :data:`DEFAULT_ESTIMATORS` on
``hf_spider/data/fusion_validation.csv`` **leave one benchmark out**. The table holds four benchmarks: the
TransferGraph records' recorded LogME / Reg-H-Score (image, 8 targets; text, 8 targets), the zoo's meta-training
tasks (every estimator, on tasks drawn from the zoo's *source* domains) and the zoo's 7 targets (every estimator);
the last two also on the smaller probe sets of successive halving's early rounds, so an option is scored on
``rank --dataset``'s path too. Stage one is stood in for by rankers that never read the target (the collaborative
prior, evidence
``records``; models whose records are hidden fall back to their family, evidence ``content``, or to nothing,
evidence ``size``; the size prior alone; another task's measured accuracies, a stage one right about some task
but not necessarily this one). The shipped numbers are the choice made **without the zoo's targets**, so
the zoo (``benchmarks/zoo/run.py``) is a benchmark they never saw; every other benchmark is reported with the
choice made without it. ``lineage`` and ``facts`` have no stand-in in the records: they are credited as ``records``
(a measured result of the model itself or of the model it was fine-tuned from, not of its family; an assumption).
``python benchmarks/fusion_bench.py`` prints the fit and its validation; ``tests/test_fusion.py`` re-fits the
shipped numbers from the bundled table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import FusionInputError

logger = logging.getLogger(__name__)

#: A reliability is never credited as certain: ``rho = 1`` would give one view infinite weight.
MAX_RELIABILITY = 0.95
#: Reliability of a stage-one score that states neither evidence nor confidence (an assumption, see above).
UNSTATED_RELIABILITY = 0.0
#: Values of one view closer than this share of its largest magnitude are ties (:func:`normal_scores`).
TIE_TOLERANCE = 1e-9
#: Fewest candidates with both views on which their agreement is measured (a correlation of 2 points is +-1).
MIN_AGREEMENT = 4


@dataclass(frozen=True)
class FusionParameters:
    """The credited reliabilities the fusion uses.

    Args:
        evidence: reliability of a stage-one score per :data:`~hf_spider.outputs.shortlist.EVIDENCE_KINDS` entry,
            used when an entry gives evidence but no confidence.
        estimators: reliability of each estimator, credited when it is one of the views.
        unknown_estimator: reliability of an estimator the table does not know.
        agreement: scale stage one's credit by its agreement with the estimators at query time (see the module
            docstring).
    """

    evidence: Mapping[str, float]
    estimators: Mapping[str, float]
    unknown_estimator: float
    agreement: bool = False


#: Chosen by ``hf_spider.rerank.validation.fit_fusion()`` on the bundled table without the zoo's targets
#: (``benchmarks/fusion_bench.py``); ``tests/test_fusion.py`` re-fits them, so they cannot drift from it. ``lineage``
#: and ``facts`` are credited as ``records`` (an assumption: no stand-in in the records). Every estimator is credited
#: in proportion to how well it ranks alone on the benchmarks other than the zoo (LogME 1, Reg-H-Score 0.99, NCE 0.86,
#: H-score 0.67, ...). Query-time agreement was not chosen (``agreement=False``): scored at every depth and on the
#: successive halving of ``rank --dataset``, the validation prefers stage one unbounded (``docs/rerank.md``); ``fuse``
#: keeps the bound for a caller's parameters.
FUSION_PARAMETERS = FusionParameters(
    evidence={"records": 0.3, "lineage": 0.3, "facts": 0.3, "content": 0.2, "size": 0.0},
    estimators={
        "gbc": 0.5,
        "hscore": 0.335,
        "leep": 0.435,
        "lfc": 0.46,
        "logme": 0.5,
        "nce": 0.43,
        "nleep": 0.485,
        "pactran": 0.29,
        "reg_hscore": 0.495,
        "sfda": 0.375,
        "transrate": 0.28,
    },
    unknown_estimator=0.25,
    agreement=False,
)
#: The estimators re-ranking runs when none are named: the set the validation picked without the zoo (LogME + NCE +
#: Reg-H-Score over LogME alone, LogME + Reg-H-Score, LogME + NCE and LogME + NCE + H-score:
#: ``benchmarks/fusion_bench.py``). NCE reads the model's classification head; a candidate without one is scored by
#: the others. Reg-H-Score is H-score with a Ledoit-Wolf shrunk covariance (Ibrahim et al. 2022), which stays an
#: estimate when features outnumber samples, where plain H-score is ``C - 1`` for every wide candidate.
DEFAULT_ESTIMATORS: tuple[str, ...] = ("logme", "nce", "reg_hscore")


@dataclass(frozen=True)
class FusionResult:
    """What :func:`fuse` decided, aligned with its inputs.

    Args:
        order: ``[K]`` indices into the inputs, best first.
        scores: ``[K]`` fused scores (posterior mean of the standardised accuracy; higher is better).
        stage_one_reliability: ``[K]`` the reliability credited to each candidate's stage-one score.
        stage_one_share: ``[K]`` the share of each candidate's score owed to stage one, in [0, 1].
        estimator_weights: estimator name -> its weight within the estimator view (summing to one).
        measured: ``[K]`` whether the candidate has an estimator value that counted; one without is placed by stage
            one alone (its posterior mean from stage one: the middle, 0, where stage one is credited nothing).
    """

    order: np.ndarray
    scores: np.ndarray
    stage_one_reliability: np.ndarray
    stage_one_share: np.ndarray
    estimator_weights: dict[str, float] = field(default_factory=dict)
    measured: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def fuse(
    stage_one: Sequence[float] | np.ndarray,
    estimator_scores: Mapping[str, Sequence[float] | np.ndarray],
    *,
    evidence: Sequence[str | None] | None = None,
    confidence: Sequence[float | None] | None = None,
    parameters: FusionParameters | None = None,
) -> FusionResult:
    """Order ``K`` candidates from their stage-one scores and forward-pass estimator values, without running a model.

    This is what :func:`~hf_spider.rerank.rerank_shortlist` calls after its forward passes; call it yourself to
    re-mix recorded values (a re-ranked shortlist's JSON holds them all: see the README).

    Args:
        stage_one: ``[K]`` stage-one scores, higher is better (any scale: only their order is read).
        estimator_scores: estimator name -> ``[K]`` raw values as the estimator returns them (a registered name's
            direction is read from :data:`hf_spider.estimators.ESTIMATORS`; other names are higher-is-better).
            ``nan`` marks a value that is missing; a candidate without any value is placed by stage one alone (its
            posterior mean from stage one: with stage one credited nothing, the middle; ``FusionResult.measured``
            marks it). An infinite value is refused: an estimator's value is finite.
        evidence: ``[K]`` what each stage-one score rests on (``"records"``, ``"lineage"``, ``"facts"``,
            ``"content"``, ``"size"``) or ``None``.
        confidence: ``[K]`` stage-one reliabilities in [0, 1] or ``None``, read where ``evidence`` is not given.
        parameters: the credited reliabilities (default: :data:`FUSION_PARAMETERS`).

    Returns:
        The order (ties broken by stage one, then by input position) and the per-candidate fused scores.

    Raises:
        FusionInputError: inputs of different lengths or shapes, a value that is no number, an infinite estimator
            value, a stage-one score that is NaN, no estimator, or an evidence that is no known kind.

    Example:
        >>> from hf_spider.rerank import fuse
        >>> fuse([2.0, 1.0], {"logme": [0.1, 0.9]}, evidence=["size", "size"]).order.tolist()  # swapped
        [1, 0]
        >>> fuse([2.0, 1.0], {"logme": [0.1, 0.9]}, confidence=[0.9, 0.9]).order.tolist()  # stage one is trusted
        [0, 1]
    """
    params = parameters or FUSION_PARAMETERS
    s = _stage_one_scores(stage_one)
    k = len(s)
    if not isinstance(estimator_scores, Mapping) or not estimator_scores:
        raise FusionInputError("fuse() needs at least one estimator's values; pass estimator_scores={'logme': [...]}")
    values = {name: _oriented(name, v) for name, v in estimator_scores.items()}
    for name, v in values.items():
        if len(v) != k:
            raise FusionInputError(f"estimator '{name}' has {len(v)} values for {k} candidates; pass one per candidate")
    rho_s = stage_one_reliability(k, evidence=evidence, confidence=confidence, parameters=params)
    credit = {name: float(_clip(params.estimators.get(name, params.unknown_estimator))) for name in values}
    x_e, weights = estimator_view(values, credit)
    rho_e = np.where(np.isnan(x_e), 0.0, max(credit.values()))
    x_s = normal_scores(s)
    if params.agreement:
        rho_s = np.minimum(rho_s, agreement_bound(x_s, x_e, max(credit.values())))
    scores, share = posterior(x_s, rho_s, np.nan_to_num(x_e), rho_e)
    return FusionResult(
        order=final_order(scores, s),
        scores=scores,
        stage_one_reliability=rho_s,
        stage_one_share=share,
        estimator_weights=weights,
        measured=np.isfinite(x_e),
    )


def estimator_view(
    values: Mapping[str, np.ndarray], credit: Mapping[str, float]
) -> tuple[np.ndarray, dict[str, float]]:
    """One view from several estimators: ``[K]`` the credit-weighted mean of their normal scores (``nan`` where a
    candidate has no value at all) and each estimator's weight in it (summing to one over the estimators that order
    the candidates; 0 for the others).

    ``values`` are oriented higher-is-better with ``nan`` for missing values; normal scores are taken among the
    candidates that have a value. An estimator whose values are all ties (one candidate has it, or it is saturated,
    as H-score is when features outnumber samples) says nothing about the order and is left out, rather than pulling
    the candidates it scored towards the middle.
    """
    ordering = {name: v for name, v in values.items() if tie_groups(v[np.isfinite(v)]).max(initial=0) > 0}
    weights = {name: float(_precision(credit[name])) for name in ordering}
    total = sum(weights.values())
    if ordering and total == 0:  # every estimator is credited with nothing: weigh them alike (the view counts nothing)
        weights, total = dict.fromkeys(weights, 1.0), float(len(weights))
    k = len(next(iter(values.values())))
    x = np.zeros(k)
    w = np.zeros(k)
    for name, v in ordering.items():
        known = np.isfinite(v)
        x[known] += weights[name] * normal_scores(v[known])
        w[known] += weights[name]
    view = np.divide(x, w, out=np.full(k, np.nan), where=w > 0)
    return view, {name: weights[name] / total if name in weights else 0.0 for name in values}


def agreement_bound(x_s: np.ndarray, x_e: np.ndarray, rho_e: float) -> float:
    """The most stage one may be credited given its query-time agreement with the estimator view: ``max(r, 0) / rho_e``
    (clipped to :data:`MAX_RELIABILITY`; see the module docstring).

    ``r`` is the correlation of the two views' ``[K]`` normal scores over the candidates with an estimator value
    (``nan`` in ``x_e`` marks none). No bound (:data:`MAX_RELIABILITY`) with fewer than :data:`MIN_AGREEMENT` of them,
    a constant view or an estimator view credited with nothing.
    """
    known = np.isfinite(x_e)
    if known.sum() < MIN_AGREEMENT or np.ptp(x_s[known]) == 0 or np.ptp(x_e[known]) == 0 or rho_e <= 0:
        return MAX_RELIABILITY
    r = float(np.corrcoef(x_s[known], x_e[known])[0, 1])
    return float(np.clip(r / rho_e, 0.0, MAX_RELIABILITY))


def posterior(x_s: np.ndarray, rho_s: np.ndarray, x_e: np.ndarray, rho_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[K]`` posterior mean of the standardised accuracy from two views, and the share owed to the first."""
    a_s, a_e = _precision(rho_s), _precision(rho_e)
    scores = (a_s * x_s + a_e * x_e) / (1.0 + _information(rho_s) + _information(rho_e))
    total = a_s + a_e
    share = np.divide(a_s, total, out=np.full(len(x_s), 0.5), where=total > 0)
    return scores, share


def final_order(scores: np.ndarray, stage_one: np.ndarray) -> np.ndarray:
    """``[K]`` indices best first: by fused score (to 12 digits), then stage one, then input position."""
    k = len(scores)
    return np.lexsort((np.arange(k), -stage_one, -np.round(scores, 12)))  # lexsort: the last key is the first one


def stage_one_reliability(
    k: int,
    *,
    evidence: Sequence[str | None] | None = None,
    confidence: Sequence[float | None] | None = None,
    parameters: FusionParameters | None = None,
) -> np.ndarray:
    """``[K]`` reliability credited to each stage-one score: its evidence's, else its confidence, else none.

    The evidence credits are fitted on the fusion's own validation, among the few candidates a re-ranking runs; a
    scorer's ``confidence`` is measured on whole training lists, where any signal looks stronger than it is among its
    own top k, so it is read only for a stage one that gives no evidence (another tool's scores).

    Raises:
        FusionInputError: a list of the wrong length, an evidence kind the parameters do not know, or a confidence
            that is no number.
    """
    params = parameters or FUSION_PARAMETERS
    evidence = list(evidence) if evidence is not None else [None] * k
    confidence = list(confidence) if confidence is not None else [None] * k
    if len(evidence) != k or len(confidence) != k:
        raise FusionInputError(
            f"evidence and confidence need one entry per candidate ({k}); pass None for unknown ones"
        )
    out = np.empty(k)
    for i, (kind, conf) in enumerate(zip(evidence, confidence, strict=True)):
        if kind is not None:
            if not isinstance(kind, str) or kind not in params.evidence:
                raise FusionInputError(f"unknown evidence {kind!r}; use one of {', '.join(params.evidence)} or None")
            out[i] = _clip(params.evidence[kind])
        elif conf is not None:
            if not isinstance(conf, int | float | np.floating):
                raise FusionInputError(f"confidence {conf!r} of candidate {i} is no number; pass one in [0, 1] or None")
            out[i] = _clip(conf) if math.isfinite(conf) else UNSTATED_RELIABILITY
        else:
            out[i] = UNSTATED_RELIABILITY
    return out


def normal_scores(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``[K]`` rank-based normal scores ``Phi^-1((rank - 1/2) / K)`` (ties share their mean rank); 0 for ``K = 1``.

    Values closer than :data:`TIE_TOLERANCE` times the largest magnitude (to their neighbour in sorted order) are
    ties: floating-point noise is not an order. H-score, for one, is exactly ``C - 1`` for every candidate whose
    features have more dimensions than there are samples, and its last digits differ with the batch a process ran.
    """
    from scipy.special import ndtri
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return v
    return np.asarray(ndtri((rankdata(tie_groups(v)) - 0.5) / len(v)), dtype=np.float64)


def tie_groups(values: np.ndarray) -> np.ndarray:
    """``[K]`` the rank of each value's tie group (:data:`TIE_TOLERANCE`), in the values' order."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    tolerance = TIE_TOLERANCE * float(np.max(np.abs(values), where=np.isfinite(values), initial=0.0))
    groups = np.empty(len(values), dtype=np.int64)
    groups[order] = np.concatenate([[0], np.cumsum(np.diff(values[order]) > tolerance)])
    return groups


def _stage_one_scores(stage_one: Sequence[float] | np.ndarray) -> np.ndarray:
    """``stage_one`` as ``[K]`` floats, none NaN: a missing stage-one score has no place to keep (``-inf`` has one, the
    last: the size prior's score of a model of unknown size)."""
    try:
        s = np.asarray(stage_one, dtype=np.float64)
    except (TypeError, ValueError):
        raise FusionInputError("stage_one must be numbers, one per candidate") from None
    if s.ndim != 1:
        raise FusionInputError(f"stage_one must be a list of K numbers, got shape {s.shape}")
    if np.isnan(s).any():
        where = ", ".join(map(str, np.flatnonzero(np.isnan(s))[:5]))
        raise FusionInputError(f"stage_one is NaN at position(s) {where}; every candidate needs a score")
    return s


def _oriented(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values of estimator ``name`` as floats where higher is better (``nan`` for missing ones)."""
    from ..estimators import ESTIMATORS

    try:
        v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise FusionInputError(
            f"estimator '{name}' values must be a list of numbers (None or nan where missing)"
        ) from None
    if v.ndim != 1:
        raise FusionInputError(f"estimator '{name}' values must be a list of K numbers, got shape {v.shape}")
    if np.isinf(v).any():
        where = ", ".join(map(str, np.flatnonzero(np.isinf(v))[:5]))
        raise FusionInputError(
            f"estimator '{name}' is infinite at position(s) {where}; an estimator's value is finite (nan where missing)"
        )
    spec = ESTIMATORS.get(name)
    if spec is None:
        logger.warning("estimator '%s' is not registered: its values are read as higher-is-better", name)
    return -v if spec is not None and not spec.higher_is_better else v


def _clip(rho: float | np.ndarray) -> np.ndarray | float:
    return np.clip(rho, 0.0, MAX_RELIABILITY)


def _precision(rho: float | np.ndarray) -> np.ndarray | float:
    """Weight of a view of reliability ``rho`` in the posterior mean: ``rho / (1 - rho^2)``."""
    return rho / (1.0 - np.square(rho))


def _information(rho: float | np.ndarray) -> np.ndarray | float:
    """What a view of reliability ``rho`` adds to the posterior precision: ``rho^2 / (1 - rho^2)``."""
    return np.square(rho) / (1.0 - np.square(rho))
