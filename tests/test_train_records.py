"""The factorisation's masked Gram matrices equal their definition."""

from __future__ import annotations

import numpy as np

from hf_spider.rankers.fennec import masked_grams


def test_masked_grams_are_the_sum_of_the_selected_outer_products() -> None:
    """The factorisation's Gram matrices, against their definition written as a loop."""
    rng = np.random.default_rng(0)
    mask = (rng.random((7, 11)) < 0.4).astype(np.float64)
    features = rng.standard_normal((11, 5))
    expected = np.zeros((7, 5, 5))
    for r in range(7):
        for c in range(11):
            if mask[r, c]:
                expected[r] += np.outer(features[c], features[c])
    np.testing.assert_allclose(masked_grams(mask, features), expected, rtol=1e-12, atol=1e-12)
