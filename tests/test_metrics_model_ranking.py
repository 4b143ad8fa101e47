"""The shipped ``evaluate`` module ``model_ranking``: loads offline from the package, and keeps the definitions of
the benchmark's metrics (the pre-module ``ranking_metrics``, written out below) to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hf_spider.evaluation.metrics import METRICS, ranking_metrics
from hf_spider.metrics import load_model_ranking, model_ranking_path


def reference_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The benchmark's definitions before the module existed (weighted tau, Pearson, top@1, rel@1), extended to the
    new metrics straight from their definitions: sort, take the k best-scored, compare with the best."""
    constant = np.ptp(predicted) == 0 or np.ptp(truth) == 0
    top = int(np.argmax(predicted))
    out = {
        "weighted_tau": 0.0 if constant else float(stats.weightedtau(truth, predicted)[0]),
        "pearson": 0.0 if constant else float(stats.pearsonr(truth, predicted)[0]),
        "kendall": 0.0 if constant else float(stats.kendalltau(truth, predicted)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(truth, predicted)[0]),
        "top1": float(truth[top] == truth.max()),
        "rel1": float(truth[top] / truth.max()) if truth.max() > 0 else 0.0,
        "regret1": float(truth.max() - truth[top]),
    }
    ranked = sorted(range(len(truth)), key=lambda i: (-predicted[i], i))  # best score first, ties in input order
    best_of_five = max(truth[i] for i in ranked[:5])
    out.update(
        top5=float(best_of_five == truth.max()),
        rel5=float(best_of_five / truth.max()),
        regret5=float(truth.max() - best_of_five),
    )
    return out


def test_loads_offline_from_the_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluate

    import hf_spider

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    path = model_ranking_path()
    assert path.is_relative_to(hf_spider.__path__[0]) and (path / "model_ranking.py").is_file()
    metric = evaluate.load(str(path), keep_in_memory=True)
    assert type(metric).__name__ == "ModelRanking"
    result = metric.compute(references=[0.9, 0.8, 0.5], predictions=[3.0, 1.0, 2.0], k=[1])
    assert result["rel1"] == 1.0 and result["top1"] == 1.0 and result["regret1"] == 0.0
    assert result["weighted_tau"] == pytest.approx(stats.weightedtau([0.9, 0.8, 0.5], [3.0, 1.0, 2.0])[0], abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_matches_the_benchmark_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    truth = rng.uniform(0.3, 0.95, n)
    predicted = rng.normal(size=n)
    if seed % 3 == 1:  # ties in the scores, as fold ranks and the size prior produce
        predicted = np.round(predicted)
    if seed % 3 == 2:  # ties among the accuracies, including the best one
        truth = np.round(truth, 1)
    expected = reference_metrics(truth, predicted)
    got = load_model_ranking().compute(references=truth, predictions=predicted, k=[1, 5])
    assert set(got) == set(expected) == set(METRICS)
    for name in METRICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-12, rel=0), name
    assert ranking_metrics(truth, predicted) == pytest.approx(expected, abs=1e-12, rel=0)


def test_edge_cases() -> None:
    metric = load_model_ranking()
    constant = metric.compute(references=[0.5, 0.7, 0.9], predictions=[1.0, 1.0, 1.0], k=[1, 2, 10])
    assert constant["weighted_tau"] == constant["kendall"] == constant["pearson"] == 0.0
    assert constant["top1"] == 0.0 and constant["rel1"] == pytest.approx(0.5 / 0.9)  # ties keep the input order
    assert constant["top2"] == 0.0 and constant["regret2"] == pytest.approx(0.2)
    assert constant["top10"] == 1.0 and constant["rel10"] == 1.0 and constant["regret10"] == 0.0  # k beyond the list
    reverse = metric.compute(references=[0.9, 0.8, 0.5, 0.4], predictions=[1.0, 2.0, 3.0, 4.0])
    assert reverse["weighted_tau"] == pytest.approx(-1.0) and reverse["kendall"] == pytest.approx(-1.0)
    assert reverse["rel1"] == pytest.approx(0.4 / 0.9) and reverse["regret1"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("references", "predictions", "k", "message"),
    [
        ([0.9, 0.8], [1.0, np.nan], [1], "finite"),
        ([0.9], [1.0], [1], "at least 2"),
        ([0.9, 0.8], [1.0, 2.0], [0], "k must be at least 1"),
    ],
)
def test_rejects_what_has_no_ranking(references: list, predictions: list, k: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_model_ranking().compute(references=references, predictions=predictions, k=k)
