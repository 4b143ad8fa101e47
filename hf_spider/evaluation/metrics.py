"""The metrics of every hf-spider figure: weighted tau, rel@k, the target weights and the per-target tables.

One definition each, shared by ``hf-spider evaluate``, the TransferGraph and zoo benchmarks and the fusion validation
(:mod:`hf_spider.rerank.validation`), so a figure means the same thing wherever it is printed. The per-list metrics
of a table come from the shipped ``evaluate`` module ``model_ranking`` (:mod:`hf_spider.metrics`), which a user can
load on its own; :func:`weighted_tau` and :func:`rel_at_k` are the same definitions for callers that need one number
without loading ``evaluate`` (the fusion grid search scores thousands of lists).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: Shortlist sizes of top@k, rel@k and regret@k.
TOP_K = (1, 5)
#: Metrics of :func:`ranking_metrics` (the ``model_ranking`` module), in table order.
METRICS = (
    "weighted_tau",
    "kendall",
    "spearman",
    "pearson",
    *(f"{kind}{k}" for k in TOP_K for kind in ("top", "rel", "regret")),
)
#: Rows of an evaluation table that summarise a (modality, protocol, ranker) over its targets.
MEAN_ROWS = ("weighted mean", "plain mean")


def weighted_tau(truth: np.ndarray, scores: np.ndarray) -> float:
    """``scipy.stats.weightedtau`` (hyperbolic weigher: swaps among the best models cost the most) of predicted
    ``scores`` against the measured ``truth``, the published tables' metric.

    A ``[R, N]`` ``scores`` array (random draws) gives the mean over its rows. ``-inf`` marks a candidate ranked last
    on purpose (it is given a score below every finite one); NaN is refused, since scipy silently returns a
    meaningless value for it: leave an unscored candidate out, or give it the lowest score.
    """
    from scipy.stats import weightedtau

    rows = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if np.isnan(rows).any() or np.isposinf(rows).any():
        raise ValueError("scores must be finite or -inf; leave an unscored candidate out or give it the lowest score")
    taus = []
    for row in rows:
        finite = row[np.isfinite(row)]
        floor = (finite.min() if len(finite) else 0.0) - 1.0
        taus.append(weightedtau(truth, np.where(np.isneginf(row), floor, row)).statistic)
    return float(np.mean(taus))


def rel_at_k(truth: np.ndarray, scores: np.ndarray, k: int = 1) -> float:
    """The best measured accuracy among the ``k`` best-scored candidates over the best accuracy of all (ties in
    ``scores`` keep the input order); a ``[R, N]`` ``scores`` array gives the mean over its rows."""
    truth = np.asarray(truth, dtype=np.float64)
    rows = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    best = truth.max()
    return float(np.mean([truth[np.argsort(-row, kind="stable")[:k]].max() / best for row in rows]))


def ranking_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """:data:`METRICS` of one ranked list, computed by the shipped ``evaluate`` module ``model_ranking``.

    Weighted tau, Kendall, Spearman, Pearson, and top@k (a best model is among the k best-scored), rel@k (their best
    accuracy over the best) and regret@k (the best accuracy minus theirs) for k in :data:`TOP_K`.
    """
    from ..metrics import load_model_ranking

    result = load_model_ranking().compute(references=truth, predictions=predicted, k=list(TOP_K))
    return {name: float(result[name]) for name in METRICS}


def target_weight(truth: pd.Series | np.ndarray) -> float:
    """The published tables' weight of a target: (max - mean) of its accuracies (easy targets count less)."""
    values = np.asarray(truth, dtype=np.float64)
    return float(values.max() - values.mean())


def fold_rank(scores: pd.Series) -> pd.Series:
    """Ranks of ``scores`` scaled to [0, 1] within one fold, ties averaged, NaN ranked last.

    Scaled as ``(rank - 1) / (n - 1)`` so that a fold of tied scores sits at exactly 0.5 whatever its size: pandas'
    ``rank(pct=True)`` gives ``(n + 1) / 2n``, which differs between folds of different sizes, so concatenating the
    folds of a ranker without any signal used to rank the models by fold size (a spurious tau of 0.42 on text).
    """
    ranks = scores.rank(method="average", na_option="top")  # "top": NaN get the lowest ranks
    return (ranks - 1.0) / max(len(scores) - 1, 1)


def metrics_table(truths: Mapping[str, pd.Series], predictions: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Per-target :data:`METRICS` and weight from ground truth and predicted scores (both indexed by model id)."""
    rows = {}
    for target, predicted in predictions.items():
        truth = truths[target].reindex(predicted.index)
        if truth.isna().any():
            raise ValueError(f"no ground truth for {int(truth.isna().sum())} ranked model(s) of target '{target}'")
        rows[target] = {**ranking_metrics(truth.to_numpy(), predicted.to_numpy()), "weight": target_weight(truth)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*METRICS, "weight"])


def summarise(table: pd.DataFrame, metric: str = "weighted_tau") -> dict[str, float]:
    """Plain and weighted means of ``metric`` over the targets of ``table`` (targets where it is NaN left out)."""
    values, weights = table[metric], table["weight"]
    known = values.notna()
    return {
        "plain_mean": float(values[known].mean()),
        "weighted_mean": float((values[known] * weights[known]).sum() / weights[known].sum()),
    }
