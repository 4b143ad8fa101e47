"""The benchmark protocol: nothing recorded on a target (or on held-out models) reaches ``fit``; metrics are right."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
import pytest

from hf_spider.evaluation.evaluate import PLACEMENT, evaluate, evaluate_protocols
from hf_spider.evaluation.metrics import METRICS, fold_rank, ranking_metrics, summarise
from hf_spider.evaluation.protocols import cold_start_splits, leave_group_out_splits, loto_splits, mixed_pool_splits
from hf_spider.finetune_records import PUBLISHED_TARGETS, FinetuneRecords, load_bundled_records
from hf_spider.hub.index import load_bundled_index
from hf_spider.hub.records import ModelRecord
from hf_spider.tokens.task import TaskDescription, TaskTokens


@dataclass
class SpyRanker:
    """Records what ``fit`` was given; scores by model size so the metrics have something to measure."""

    seen: list[tuple[FinetuneRecords, set[str]]] = field(default_factory=list)
    name: str = "spy"

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> SpyRanker:
        self.seen.append((records, set(tasks)))
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return np.array([float(c.num_parameters or 0) for c in candidates])


@pytest.fixture(scope="module")
def setup() -> tuple[FinetuneRecords, list[ModelRecord], dict[str, TaskTokens]]:
    records = load_bundled_records()
    estimator_rows = records.accuracy.assign(estimator="logme", score=records.accuracy.accuracy)  # stands in for LogME
    records = FinetuneRecords(records.accuracy, estimator_rows[["model", "target", "modality", "estimator", "score"]])
    models = load_bundled_index()
    tasks = {t: TaskTokens(TaskDescription(name=t, modality="image", label_names=("a", "b"))) for t in records.targets}
    return records, models, tasks


def test_leave_one_target_out_never_shows_the_target(setup: tuple) -> None:
    records, models, tasks = setup
    targets = PUBLISHED_TARGETS["image"]
    spy = SpyRanker()
    table = evaluate(lambda: spy, loto_splits(records, models, tasks, targets), tasks, models=models)
    assert len(spy.seen) == len(targets)
    for target, (train, task_names) in zip(targets, spy.seen, strict=True):
        assert target not in set(train.accuracy.target)
        assert target not in set(train.estimator_scores.target)
        assert target not in task_names
        assert len(train.accuracy) == (records.accuracy.target != target).sum()  # everything else is kept
    assert list(table.index) == list(targets) and table.weighted_tau.between(-1, 1).all()


def test_leave_group_out_hides_every_target_of_the_group(setup: tuple) -> None:
    records, models, tasks = setup
    targets = ["cifar100", "svhn", "caltech101"]
    groups = {"cifar100": "digits and objects", "svhn": "digits and objects"}  # caltech101: its own group
    spy = SpyRanker()
    evaluate(lambda: spy, leave_group_out_splits(records, models, tasks, targets, groups=groups), tasks, models=models)
    hidden = [{"cifar100", "svhn"}, {"cifar100", "svhn"}, {"caltech101"}]
    for hide, (train, task_names) in zip(hidden, spy.seen, strict=True):
        assert hide.isdisjoint(train.accuracy.target) and hide.isdisjoint(train.estimator_scores.target)
        assert hide.isdisjoint(task_names)
        assert len(train.accuracy) == (~records.accuracy.target.isin(hide)).sum()  # everything else is kept


def test_cold_start_hides_every_record_of_the_held_out_models(setup: tuple) -> None:
    records, models, tasks = setup
    splits = cold_start_splits(records, models, tasks, ["cifar100"], folds=4, seed=0)
    assert len(splits) == 4
    held_out = [set(s.truth.index) for s in splits]
    assert set().union(*held_out) == set(records.accuracy[records.accuracy.target == "cifar100"].model)
    assert all(a.isdisjoint(b) for i, a in enumerate(held_out) for b in held_out[i + 1 :])
    for split, held in zip(splits, held_out, strict=True):
        assert held.isdisjoint(split.train_records.accuracy.model)
        assert held.isdisjoint(split.train_records.estimator_scores.model)
        assert "cifar100" not in set(split.train_records.accuracy.target)
        assert 0.2 < len(held) / len(records.accuracy[records.accuracy.target == "cifar100"]) < 0.3


def test_ranking_metrics() -> None:
    truth = np.array([0.9, 0.8, 0.5, 0.4])
    perfect = ranking_metrics(truth, truth)
    assert set(perfect) == set(METRICS)
    assert [perfect[k] for k in ("weighted_tau", "kendall", "spearman", "pearson")] == pytest.approx([1.0] * 4)
    assert (perfect["top1"], perfect["rel1"], perfect["regret1"]) == (1.0, 1.0, 0.0)
    reverse = ranking_metrics(truth, -truth)
    assert reverse["weighted_tau"] == pytest.approx(-1.0) and reverse["top1"] == 0.0
    assert reverse["rel1"] == pytest.approx(0.4 / 0.9)


def test_summary_weights_targets_by_spread() -> None:
    table = pd.DataFrame({"weighted_tau": [1.0, 0.0], "weight": [3.0, 1.0]}, index=["a", "b"])
    assert summarise(table) == pytest.approx({"plain_mean": 0.5, "weighted_mean": 0.75})


@dataclass
class ConstantRanker:
    """No signal at all: every candidate gets the same score."""

    name: str = "constant"

    def fit(self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]) -> Self:
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return np.zeros(len(candidates))


def test_cold_start_folds_of_a_ranker_without_signal_score_zero(setup: tuple) -> None:
    """Pooling folds of different sizes must not turn tied scores into a ranking by fold size."""
    records, models, tasks = setup
    splits = cold_start_splits(records, models, tasks, ["cifar100"], folds=4, seed=0)
    assert len({len(s.truth) for s in splits}) > 1  # the folds differ in size: the case that used to leak
    table = evaluate(ConstantRanker, splits, tasks, models=models)
    assert table.loc["cifar100", "weighted_tau"] == 0.0
    np.testing.assert_array_equal(fold_rank(pd.Series([3.0, 3.0, 3.0])), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(fold_rank(pd.Series([2.0, np.nan, 5.0])), [0.5, 0.0, 1.0])


@dataclass
class OracleRanker:
    """Scores each candidate by its true accuracy on the target: a perfect ranking."""

    truth: dict[str, float]
    name: str = "oracle"

    def fit(self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]) -> Self:
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return np.array([self.truth[c.repo_id] for c in candidates])


def test_cold_start_folds_of_a_perfect_ranker_score_one(setup: tuple) -> None:
    """Every fold's models are judged against their own accuracy: pooled folds of a perfect ranker give tau 1."""
    records, models, tasks = setup
    rows = records.accuracy[records.accuracy.target == "cifar100"]
    truth = rows.groupby("model").accuracy.max().to_dict()
    splits = cold_start_splits(records, models, tasks, ["cifar100"], folds=4, seed=0)
    table = evaluate(lambda: OracleRanker(truth), splits, tasks, models=models)
    assert table.loc["cifar100", "weighted_tau"] > 0.9  # within-fold ranks pooled: near 1, exactly 1 per fold
    np.testing.assert_array_equal(fold_rank(pd.Series([2.0, np.nan, 5.0])), [0.5, 0.0, 1.0])


def test_mixed_pool_ranks_the_held_out_fold_with_the_seen_models(setup: tuple) -> None:
    records, models, tasks = setup
    on_target = set(records.accuracy[records.accuracy.target == "cifar100"].model)
    splits = mixed_pool_splits(records, models, tasks, ["cifar100"], folds=4, seed=0)
    cold = cold_start_splits(records, models, tasks, ["cifar100"], folds=4, seed=0)
    assert len(splits) == 4
    for split, cold_split in zip(splits, cold, strict=True):
        assert set(split.truth.index) == on_target  # one list: every model recorded on the target
        assert split.held_out & on_target == set(cold_split.truth.index)  # the cold-start fold is the held-out part
        assert split.held_out.isdisjoint(split.train_records.accuracy.model)
        assert "cifar100" not in set(split.train_records.accuracy.target)
        pd.testing.assert_frame_equal(split.train_records.accuracy, cold_split.train_records.accuracy)


def test_mixed_pool_placement_of_a_perfect_and_of_a_seen_first_ranker(setup: tuple) -> None:
    """A perfect ranker places the held-out models fairly; one that ranks every unseen model last pushes them down."""
    records, models, tasks = setup
    truth = records.accuracy[records.accuracy.target == "cifar100"].groupby("model").accuracy.max().to_dict()
    perfect = evaluate_protocols(
        lambda: OracleRanker(truth), records, models, tasks, ["cifar100"], protocols=["mixed_pool"]
    )["mixed_pool"]
    assert list(perfect.columns) == [*METRICS, *PLACEMENT, "weight"]
    row = perfect.loc["cifar100"]
    assert row.weighted_tau == pytest.approx(1.0) and row.rel1 == 1.0 and row.heldout_weighted_tau == pytest.approx(1.0)
    assert row.heldout_bias == pytest.approx(0.0, abs=1e-12)
    assert row.heldout_top5_share == pytest.approx(row.heldout_share, abs=0.01)  # averaged over the folds

    seen_first = evaluate_protocols(
        lambda: SeenFirstRanker(truth), records, models, tasks, ["cifar100"], protocols=["mixed_pool"]
    )["mixed_pool"].loc["cifar100"]
    assert seen_first.heldout_top5_share == 0.0 and seen_first.heldout_bias < -0.3
    assert seen_first.heldout_weighted_tau == pytest.approx(1.0)  # still ordered right among themselves
    assert seen_first.weighted_tau < row.weighted_tau


@dataclass
class SeenFirstRanker:
    """The true accuracy for models it was fitted with, the true accuracy minus 1 for the others."""

    truth: dict[str, float]
    seen: set[str] = field(default_factory=set)
    name: str = "seen_first"

    def fit(self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]) -> Self:
        self.seen = set(records.accuracy.model)
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return np.array([self.truth[c.repo_id] - (c.repo_id not in self.seen) for c in candidates])


def test_cold_start_and_mixed_pool_share_their_fits(setup: tuple) -> None:
    records, models, tasks = setup
    spy = SpyRanker()
    tables = evaluate_protocols(
        lambda: spy, records, models, tasks, ["cifar100"], protocols=["cold_start", "mixed_pool"]
    )
    assert len(spy.seen) == 4 and set(tables) == {"cold_start", "mixed_pool"}
    alone = evaluate(SpyRanker, cold_start_splits(records, models, tasks, ["cifar100"]), tasks, models=models)
    pd.testing.assert_frame_equal(tables["cold_start"], alone)
