"""The cold-start forest kept as tensors predicts what scikit-learn's fitted trees predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import ExtraTreesRegressor

from hf_spider.scorer import forest
from hf_spider.scorer.forest import MAX_FEATURES, MIN_LEAF, fit_forest, predict_forest


@pytest.mark.parametrize("block", [forest.BLOCK, 7])
def test_tensor_forest_matches_scikit_learn(monkeypatch, block: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    y = x[:, 0] * x[:, 1] + np.sin(x[:, 2]) + 0.1 * rng.standard_normal(300)
    arrays = fit_forest(x, y, seed=3, trees=20)
    reference = ExtraTreesRegressor(
        n_estimators=20, min_samples_leaf=MIN_LEAF, max_features=MAX_FEATURES, random_state=3, n_jobs=1
    ).fit(x, y)
    queries = rng.standard_normal((forest.BLOCK + 50, 6)).astype(np.float32)  # more than one block
    monkeypatch.setattr(forest, "BLOCK", block)
    predicted = predict_forest(*arrays.tensors(), torch.from_numpy(queries)).numpy()
    np.testing.assert_allclose(predicted, reference.predict(queries), rtol=1e-5, atol=1e-5)


def test_an_empty_forest_predicts_zeros() -> None:
    empty = [torch.zeros((0, 1), dtype=dtype) for dtype in (torch.long, torch.float32, torch.long, torch.long)]
    predicted = predict_forest(*empty, torch.zeros((0, 1)), torch.ones((5, 3)))
    assert predicted.tolist() == [0.0] * 5
