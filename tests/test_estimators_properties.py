"""Property tests of the estimators: invariances every definition promises, and monotonicity in class separation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_spider import estimators as est

FEATURE_ESTIMATORS = ["logme", "hscore", "reg_hscore", "gbc", "sfda", "pactran", "transrate", "lfc"]
#: Scale-free by definition: H-scores (trace of a ratio of covariances), LFC (a cosine between kernels).
SCALE_INVARIANT = ["hscore", "reg_hscore", "lfc"]
FEW = settings(max_examples=8, deadline=None)
#: PACTran's head stops after 100 L-BFGS-B steps from a random start tied to the class order: relabelling moves the
#: truncation point (the reference's seed spread is up to 4e-4 relative); every other estimator is exactly invariant.
RELABEL_RTOL = {"pactran": 5e-4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gaussians(seed: int, sep: float, n: int = 90, d: int = 6, c: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Class-conditional Gaussians: class c has mean ``sep * m_c`` with orthonormal m_c, identity covariance."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % c)
    means = np.linalg.qr(rng.normal(size=(d, d)))[0][:c]
    return rng.normal(size=(n, d)) + sep * means[y], y


def _probs(seed: int, strength: float, n: int = 90, c: int = 3, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Source probabilities whose logits carry ``strength`` x the target label (through a fixed class map)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % c)
    logits = rng.normal(size=(n, k)) + strength * np.eye(k)[:c][y]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), y


@pytest.mark.parametrize("name", [*FEATURE_ESTIMATORS, "nleep-fixed-start"])
@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_invariant_to_permuting_samples(name: str, seed: int) -> None:
    f, y = _gaussians(seed, sep=2.0)
    perm = np.random.default_rng(seed + 1).permutation(len(y))
    if name == "nleep-fixed-start":  # k-means++ draws depend on row order; the rest of N-LEEP must not
        start = np.arange(len(y)) % 9
        assert est.nleep(f[perm], y[perm], init_assignment=start[perm]) == pytest.approx(
            est.nleep(f, y, init_assignment=start), rel=1e-9
        )
        return
    assert getattr(est, name)(f[perm], y[perm]) == pytest.approx(getattr(est, name)(f, y), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("name", [*FEATURE_ESTIMATORS, "nleep"])
@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_invariant_to_relabelling_classes(name: str, seed: int) -> None:
    f, y = _gaussians(seed, sep=2.0)
    relabel = np.random.default_rng(seed + 2).permutation(3)
    rtol = RELABEL_RTOL.get(name, 1e-7)
    assert getattr(est, name)(f, relabel[y]) == pytest.approx(getattr(est, name)(f, y), rel=rtol, abs=1e-12)


@pytest.mark.parametrize("name", ["leep", "nce"])
@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_source_estimators_invariant_to_permutations(name: str, seed: int) -> None:
    p, y = _probs(seed, strength=2.0)
    rng = np.random.default_rng(seed + 3)
    perm, relabel, cols = rng.permutation(len(y)), rng.permutation(3), rng.permutation(p.shape[1])
    base = getattr(est, name)(p, y)
    assert getattr(est, name)(p[perm], y[perm]) == pytest.approx(base, rel=1e-9)
    assert getattr(est, name)(p, relabel[y]) == pytest.approx(base, rel=1e-9)
    assert getattr(est, name)(p[:, cols], y) == pytest.approx(base, rel=1e-9)  # source classes are unordered too


@pytest.mark.parametrize("name", SCALE_INVARIANT)
@FEW
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1e3))
def test_scale_invariant_estimators(name: str, seed: int, scale: float) -> None:
    f, y = _gaussians(seed, sep=2.0)
    assert getattr(est, name)(scale * f, y) == pytest.approx(getattr(est, name)(f, y), rel=1e-7)


@pytest.mark.parametrize("name", [*FEATURE_ESTIMATORS, "nleep"])
@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_better_separated_classes_score_higher(name: str, seed: int) -> None:
    spec = est.ESTIMATORS[name]
    close, far = _gaussians(seed, sep=0.5), _gaussians(seed, sep=4.0)
    assert spec.oriented(features=far[0], labels=far[1]) > spec.oriented(features=close[0], labels=close[1])


@pytest.mark.parametrize("name", ["leep", "nce"])
@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_more_informative_source_scores_higher(name: str, seed: int) -> None:
    weak, strong = _probs(seed, strength=0.2), _probs(seed, strength=5.0)
    assert getattr(est, name)(*strong) > getattr(est, name)(*weak)


@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_otce_lower_when_source_labels_match_the_features(seed: int) -> None:
    # The source sees the target's own classes (same means, fresh noise): with its labels intact, transport couples
    # each target class to one source class. Unrelated source geometry (another seed's means) guarantees nothing.
    f, y = _gaussians(seed, sep=4.0)
    rng = np.random.default_rng(seed)
    src_f = f + 0.1 * rng.normal(size=f.shape)
    shuffled = rng.permutation(y)
    matched = est.otce(f, y, source_features=src_f, source_labels=y)
    assert matched < est.otce(f, y, source_features=src_f, source_labels=shuffled)
