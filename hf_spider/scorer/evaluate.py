"""The TransferGraph benchmark protocol, generic over any :class:`~hf_spider.rankers.base.TrainableRanker` factory.

Protocol (``shared/data/transfergraph/README.md``): leave one target out, nothing recorded on the target reaches
``fit`` (no accuracy, no estimator score, no task tokens); ground truth is the best full fine-tuning accuracy; the
metric is ``scipy.stats.weightedtau`` over the models recorded on the target; per-modality means are plain and
weighted by (max - mean) of the target's accuracies. **Cold start** also holds out a quarter of the models entirely
(four folds): the ranker never sees any of their records and must rank them on the target from content alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from huggingface_hub.utils import tqdm

from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..rankers.base import Ranker, TrainableRanker
from ..tokens.task import TaskTokens

logger = logging.getLogger(__name__)

RankerFactory = Callable[[], TrainableRanker]
#: Metrics of :func:`ranking_metrics`, in table order.
METRICS = ("weighted_tau", "pearson", "top1", "rel1")


@dataclass(frozen=True)
class Split:
    """What ``fit`` may see for one evaluation step, and what is then ranked."""

    target: str
    train_records: FinetuneRecords
    train_tasks: dict[str, TaskTokens]
    test_models: list[ModelRecord]
    truth: pd.Series  # accuracy on the target, indexed by model id


@dataclass
class FittedBaseline:
    """Turns a ranker built from records (the collaborative prior, the size prior) into a :class:`TrainableRanker`."""

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


def ranking_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Weighted tau, Pearson, top@1 (is the top-ranked model the best one) and rel@1 (its accuracy over the best)."""
    from scipy.stats import pearsonr, weightedtau

    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    top = int(np.argmax(predicted))
    constant = np.ptp(predicted) == 0 or np.ptp(truth) == 0
    return {
        "weighted_tau": float(weightedtau(truth, predicted)[0]) if not constant else 0.0,
        "pearson": float(pearsonr(truth, predicted)[0]) if not constant else 0.0,
        "top1": float(truth[top] == truth.max()),
        "rel1": float(truth[top] / truth.max()) if truth.max() > 0 else 0.0,
    }


def target_weight(truth: pd.Series) -> float:
    """The published tables' weight of a target: (max - mean) of its accuracies (easy targets count less)."""
    return float(truth.max() - truth.mean())


def loto_splits(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
) -> list[Split]:
    """Leave-one-target-out: for each target, every record and task except the target's; rank its recorded models."""
    by_id = {m.repo_id: m for m in models}
    splits = []
    for target in targets:
        truth = _truth(records, target, by_id)
        splits.append(
            Split(
                target=target,
                train_records=records.without_target(target),
                train_tasks={name: t for name, t in tasks.items() if name != target},
                test_models=[by_id[m] for m in truth.index],
                truth=truth,
            )
        )
    return splits


def cold_start_splits(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
    *,
    folds: int = 4,
    seed: int = 0,
) -> list[Split]:
    """Leave one target out *and* one fold of the models (``1 / folds`` of them, all their records) out."""
    by_id = {m.repo_id: m for m in models}
    recorded = sorted(set(records.accuracy.model) & set(by_id))
    fold_of = dict(zip(recorded, np.random.default_rng(seed).permutation(len(recorded)) % folds, strict=True))
    splits = []
    for target in targets:
        truth = _truth(records, target, by_id)
        base = records.without_target(target)
        for fold in range(folds):
            held = {m for m, f in fold_of.items() if f == fold}
            fold_truth = truth[truth.index.isin(held)]
            if len(fold_truth) < 2:
                continue
            splits.append(
                Split(
                    target=target,
                    train_records=FinetuneRecords(
                        base.accuracy[~base.accuracy.model.isin(held)].reset_index(drop=True),
                        base.estimator_scores[~base.estimator_scores.model.isin(held)].reset_index(drop=True),
                    ),
                    train_tasks={name: t for name, t in tasks.items() if name != target},
                    test_models=[by_id[m] for m in fold_truth.index],
                    truth=fold_truth,
                )
            )
    return splits


def evaluate(
    factory: RankerFactory,
    splits: Sequence[Split],
    tasks: Mapping[str, TaskTokens],
    *,
    models: Sequence[ModelRecord],
    name: str = "ranker",
) -> pd.DataFrame:
    """Fit a fresh ranker per split and score the split's test models on its target.

    Returns:
        One row per target (cold-start folds pooled: their predictions are ranked per fold, then concatenated as
        within-fold ranks, see :func:`fold_rank`) with the :data:`METRICS` and the target weight.
    """
    predictions: dict[str, list[pd.Series]] = {}
    for split in tqdm(splits, desc=f"evaluate {name}", name="hf_spider.benchmark", leave=False):
        ranker = factory().fit(split.train_records, models, split.train_tasks)
        scores = np.asarray(ranker.score(tasks[split.target], split.test_models), dtype=np.float64)
        scores = np.nan_to_num(scores, nan=-np.inf)
        predictions.setdefault(split.target, []).append(fold_rank(pd.Series(scores, index=split.truth.index)))
    return metrics_table(split_truths(splits), {t: pd.concat(p) for t, p in predictions.items()})


def split_truths(splits: Sequence[Split]) -> dict[str, pd.Series]:
    """Ground truth per target over all of its splits (the cold-start folds of a target hold disjoint models).

    Keeping only one split's truth per target would leave the other folds' models NaN, which ``weightedtau`` does
    not reject: it silently returns a meaningless value (how the first cold-start figures were wrong).
    """
    parts: dict[str, list[pd.Series]] = {}
    for split in splits:
        parts.setdefault(split.target, []).append(split.truth)
    return {target: pd.concat(truths) for target, truths in parts.items()}


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
    return pd.DataFrame.from_dict(rows, orient="index")


def summarise(table: pd.DataFrame, metric: str = "weighted_tau") -> dict[str, float]:
    """Plain and weighted means of ``metric`` over the targets of ``table``."""
    values, weights = table[metric], table["weight"]
    return {"plain_mean": float(values.mean()), "weighted_mean": float((values * weights).sum() / weights.sum())}


def _truth(records: FinetuneRecords, target: str, by_id: Mapping[str, ModelRecord]) -> pd.Series:
    rows = records.accuracy[(records.accuracy.target == target) & records.accuracy.model.isin(by_id)]
    return rows.groupby("model").accuracy.max()
