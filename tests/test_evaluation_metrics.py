"""The harness's own metrics (``hf_spider.evaluation.metrics``) against hand-computed cases and ``scipy.stats``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hf_spider.evaluation.metrics import rel_at_k, target_weight, weighted_tau

TRUTH = np.array([0.9, 0.5, 0.7])


def test_rel_at_k_by_hand() -> None:
    scores = np.array([0.1, 0.9, 0.5])  # ranks model 1 (0.5) first, then model 2 (0.7), then model 0 (0.9)
    assert rel_at_k(TRUTH, scores, k=1) == pytest.approx(0.5 / 0.9)
    assert rel_at_k(TRUTH, scores, k=2) == pytest.approx(0.7 / 0.9)
    assert rel_at_k(TRUTH, scores, k=3) == 1.0
    assert rel_at_k(TRUTH, np.zeros(3), k=1) == 1.0  # ties keep the input order: model 0 first
    draws = np.array([[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]])  # a row per random draw: the mean over rows
    assert rel_at_k(TRUTH, draws, k=1) == pytest.approx((0.5 / 0.9 + 1.0) / 2)


def test_target_weight_is_max_minus_mean() -> None:
    assert target_weight(TRUTH) == pytest.approx(0.9 - 0.7)


def test_weighted_tau_by_hand_and_against_scipy() -> None:
    assert weighted_tau(TRUTH, TRUTH) == pytest.approx(1.0)
    assert weighted_tau(TRUTH, -TRUTH) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    truth, scores = rng.uniform(size=40), rng.normal(size=40)
    assert weighted_tau(truth, scores) == stats.weightedtau(truth, scores).statistic
    draws = rng.normal(size=(3, 40))
    assert weighted_tau(truth, draws) == pytest.approx(np.mean([stats.weightedtau(truth, d).statistic for d in draws]))


def test_weighted_tau_ranks_minus_infinity_last_and_refuses_nan() -> None:
    scores = np.array([2.0, -np.inf, 1.0, -np.inf])
    truth = np.array([0.9, 0.2, 0.5, 0.3])
    assert weighted_tau(truth, scores) == stats.weightedtau(truth, [2.0, 0.0, 1.0, 0.0]).statistic
    with pytest.raises(ValueError, match="finite"):
        weighted_tau(truth, np.array([2.0, np.nan, 1.0, 0.0]))
