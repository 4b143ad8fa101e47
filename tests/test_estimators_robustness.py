"""Estimators on degenerate or awkward input: exact values where the score is defined, one clear error where not.

Every expected value here comes from outside the code under test: an exact answer (features that do not vary carry
no information), or a direct NumPy / scikit-learn transcription of the formula in the estimator's docstring.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
import torch

from hf_spider import estimators as est
from hf_spider.errors import EstimatorInputError

# The package re-exports each function under its module's name: fetch the module itself.
linalg_module = importlib.import_module("hf_spider.estimators._linalg")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _toy(n: int, d: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    return rng.normal(size=(n, d)) + 2 * rng.normal(size=(c, d))[y], y


def _class_mean_rows(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[N, D]`` each sample replaced by the mean of its class (the references' ``g``)."""
    g = np.empty_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    return g


def _numpy_hscore(f: np.ndarray, y: np.ndarray) -> float:
    """``trace(pinv(cov_f) cov_g)``, both covariances with divisor N - 1, pinv cut at max(N, D) eps (module doc)."""
    cov_f = np.cov(f, rowvar=False)
    cov_g = np.cov(_class_mean_rows(f, y), rowvar=False)
    rcond = max(f.shape) * np.finfo(np.float64).eps
    return float(np.trace(np.linalg.pinv(cov_f, rcond=rcond, hermitian=True) @ cov_g))


def _numpy_reg_hscore(f: np.ndarray, y: np.ndarray) -> float:
    """TransferGraph's HScoreR: scikit-learn's Ledoit-Wolf covariance, ``trace(pinv(shrunk) (1 - a) cov_g)``."""
    from sklearn.covariance import ledoit_wolf

    shrunk, a = ledoit_wolf(f - f.mean(axis=0))
    cov_g = np.cov(_class_mean_rows(f, y), rowvar=False)
    rcond = max(f.shape) * np.finfo(np.float64).eps
    return float(np.trace(np.linalg.pinv(shrunk, rcond=rcond, hermitian=True) @ ((1 - a) * cov_g)))


# ------------------------------------------------------------------------------------------------------------ H-score

H_SCORES = ["hscore", "reg_hscore"]
DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("name", H_SCORES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize(("n", "d", "c"), [(40, 16, 2), (100, 768, 10)], ids=["N>D", "D>N"])
def test_hscores_of_features_that_do_not_vary_are_zero(name: str, dtype: torch.dtype, n: int, d: int, c: int) -> None:
    """A dead model (one embedding for every sample) carries no information about the labels: exactly 0.

    Centring used to leave the mean's rounding error in every row, a rank-1 covariance of ~1e-31 that passed the
    relative cutoff, and the score was ~1 (Reg-H-Score 1.026), above informative features.
    """
    rng = np.random.default_rng(1)
    y = np.arange(n) % c
    dead = np.tile(rng.normal(size=d), (n, 1)).astype(np.float32)  # as a float32 model would hand it over
    informative, _ = _toy(n, d, c)
    fn = getattr(est, name)
    assert fn(dead, y, dtype=dtype) == 0.0
    assert fn(np.full((n, d), 3.7), y, dtype=dtype) == 0.0
    assert fn(informative, y, dtype=dtype) > 0.1


@pytest.mark.parametrize("name", H_SCORES)
def test_hscores_see_variation_far_below_the_offset(name: str) -> None:
    """The floor is the features' own rounding: variation 1e-6 x the offset is still signal in float64, and the
    H-scores are affine invariant, so the score equals the NumPy formula on the variation alone."""
    f, y = _toy(60, 8, 3)
    offset = np.random.default_rng(2).normal(size=8)
    expected = {"hscore": _numpy_hscore, "reg_hscore": _numpy_reg_hscore}[name](f, y)
    assert getattr(est, name)(offset + 1e-6 * f, y) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", H_SCORES)
@pytest.mark.parametrize(("n", "d", "c"), [(12, 40, 3), (7, 9, 2), (30, 31, 5)])
def test_hscores_with_more_dims_than_samples_match_the_numpy_formula(name: str, n: int, d: int, c: int) -> None:
    f, y = _toy(n, d, c, seed=n)
    f += np.random.default_rng(3).uniform(size=d)  # not centred, like real features
    expected = {"hscore": _numpy_hscore, "reg_hscore": _numpy_reg_hscore}[name](f, y)
    fn = getattr(est, name)
    assert fn(f, y) == pytest.approx(expected, rel=1e-9)
    assert fn(f, y, dtype=torch.float32) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", H_SCORES)
def test_hscores_decompose_only_an_n_by_n_matrix_when_d_exceeds_n(name: str, monkeypatch: Any) -> None:
    """D = 4,096 and N = 20: the rank is at most N - 1, so no [D, D] eigendecomposition (it took 11-22 s)."""
    shapes: list[tuple[int, ...]] = []
    reduce = linalg_module.tridiagonalize

    def recording(A: torch.Tensor, B: torch.Tensor) -> Any:
        shapes.append(tuple(A.shape))
        return reduce(A, B)

    monkeypatch.setattr(linalg_module, "tridiagonalize", recording)
    f, y = _toy(20, 4096, 4)
    assert getattr(est, name)(f, y) > 0
    assert shapes == [(20, 20)]


# ---------------------------------------------------------------------------------------------------------------- LFC

KERNELS = ["linear", "cos", "corr", "l2"]
CONSTANT_FEATURES = {
    "zeros": np.zeros((40, 16)),
    "constant": np.full((40, 16), 3.7),
    "one-embedding": np.tile(np.random.default_rng(4).normal(size=16), (40, 1)),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("features", CONSTANT_FEATURES.values(), ids=CONSTANT_FEATURES.keys())
def test_lfc_refuses_features_that_are_the_same_for_every_sample(kernel: str, features: np.ndarray) -> None:
    """The centred kernel is 0, so LFC is 0/0 (the linear and l2 kernels returned NaN)."""
    y = np.arange(40) % 2
    with pytest.raises(EstimatorInputError, match="same for every sample"):
        est.lfc(features, y, kernel=kernel)  # type: ignore[arg-type]


def test_lfc_refuses_a_kernel_that_is_constant_up_to_rounding() -> None:
    """A 1e8 offset leaves the linear kernel's centred part ~1e-16 of its norm: the closed form gave noise (6e-9)."""
    f, y = _toy(40, 16, 2)
    with pytest.raises(EstimatorInputError, match="constant up to rounding"):
        est.lfc(f + 1e8, y)
    rows = np.outer(np.random.default_rng(5).uniform(1, 2, size=40), f[0])  # one direction: cosines all 1
    with pytest.raises(EstimatorInputError, match="constant up to rounding"):
        est.lfc(rows, y, kernel="cos")


# -------------------------------------------------------------------------------------------------------------- LogME


@pytest.mark.parametrize("method", ["fixed_point", "icml"])
@pytest.mark.parametrize(
    "features",
    [np.zeros((40, 16)), 1e-12 * _toy(40, 16, 2)[0], np.zeros((10, 16))],
    ids=["zeros", "scaled-1e-12", "zeros-N<D"],
)
def test_logme_refuses_features_without_a_singular_value_above_the_cutoff(method: str, features: np.ndarray) -> None:
    """Nothing above the reference's absolute 1e-10 cutoff: NaN, or LAPACK gtsv "please report this as a bug"."""
    y = np.arange(len(features)) % 2
    with pytest.raises(EstimatorInputError, match="features carry no signal"):
        est.logme(features, y, method=method)  # type: ignore[arg-type]


def test_logme_still_scores_features_just_above_the_cutoff() -> None:
    """At 1e-9 every singular value is kept, and the maximised evidence is scale-free (alpha absorbs the scale)."""
    f, y = _toy(40, 16, 2)
    assert est.logme(1e-9 * f, y) == pytest.approx(est.logme(f, y), rel=1e-3)


# --------------------------------------------------------------------------------------------------------------- SFDA

NO_WITHIN_CLASS_VARIATION = {
    "zeros": (np.zeros((40, 16)), np.arange(40) % 2),
    "constant": (np.full((40, 16), 3.7), np.arange(40) % 2),
    "two-samples": (np.random.default_rng(6).normal(size=(2, 8)), np.array([0, 1])),
    "one-per-class": (np.random.default_rng(7).normal(size=(20, 8)), np.arange(20)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize(
    ("features", "labels"), NO_WITHIN_CLASS_VARIATION.values(), ids=list(NO_WITHIN_CLASS_VARIATION)
)
def test_sfda_refuses_zero_within_class_scatter(features: np.ndarray, labels: np.ndarray, dtype: torch.dtype) -> None:
    """S_w = 0: the shrinkage was NaN and torch's eigh failed to converge (a bare _LinAlgError)."""
    with pytest.raises(EstimatorInputError, match="SFDA needs variation within classes"):
        est.sfda(features, labels, dtype=dtype)


def test_sfda_scores_one_class_with_variation_among_singletons() -> None:
    """Within-class scatter from a single class is enough: the score is a probability."""
    f = np.random.default_rng(8).normal(size=(21, 8))
    value = est.sfda(f, np.r_[np.arange(20), 0])
    assert 0 < value <= 1


# --------------------------------------------------------------------------------------------------------------- OTCE


@pytest.mark.parametrize("offset", [0.0, 20.0, 100.0])
def test_otce_of_a_set_against_itself_is_zero_in_float32(offset: float) -> None:
    """Exact answer: the identity coupling costs 0 and determines the labels, so W = CE = 0. The unclamped
    |a|^2 - 2 a.b + |b|^2 cancels in float32, and W came out negative (-0.18 at an offset of 100)."""
    rng = np.random.default_rng(9)
    f = (rng.normal(size=(60, 768)) + offset).astype(np.float32)
    y = np.arange(60) % 10
    parts = est.otce_components(f, y, source_features=f, source_labels=y, dtype=torch.float32)
    assert 0.0 <= parts["W"] <= 1e-6 * 2 * 768  # mean squared distance between two samples: 2 D
    assert parts["OTCE"] == pytest.approx(0.0, abs=1e-3)


def test_otce_transport_cost_in_float32_matches_float64_scipy_and_pot() -> None:
    import ot
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(10)
    f, y = _toy(50, 32, 5)
    src = rng.normal(size=(70, 32)) + 50.0
    f = f + 50.0
    cost = cdist(src, f, "sqeuclidean")
    plan = ot.emd(np.full(70, 1 / 70), np.full(50, 1 / 50), cost)
    expected = float((plan * cost).sum())
    transport = est.otce_components(f, y, source_features=src, source_labels=np.arange(70) % 4, dtype=torch.float32)[
        "W"
    ]
    assert transport == pytest.approx(expected, rel=1e-4)


# ------------------------------------------------------------------------------------------------------------ wording


@pytest.mark.parametrize("n", [2, 4])
def test_nleep_default_rule_gives_one_component_below_five_samples(n: int) -> None:
    """The reference rule gives 0 components below 5 samples ("n_components=0 ... pass a smaller value"); 1 is what
    it gives for 5-9. One component makes every posterior 1, so N-LEEP is the mean log class prior: log(1/2)."""
    f = np.random.default_rng(11).normal(size=(n, 8))
    assert est.nleep(f, np.arange(n) % 2) == pytest.approx(np.log(0.5), rel=1e-8)


def test_nleep_names_the_valid_range_of_n_components() -> None:
    f, y = _toy(20, 8, 2)
    with pytest.raises(
        EstimatorInputError, match=r"n_components=0 must be between 1 and the 20 samples; pass a value in 1\.\.20"
    ):
        est.nleep(f, y, n_components=0)


def test_nce_names_its_argument_source() -> None:
    _, y = _toy(40, 4, 2)
    p = np.random.default_rng(12).dirichlet(np.ones(5), size=40)
    with pytest.raises(EstimatorInputError, match=r"^source rows must sum to 1"):
        est.nce(p * 1.1, y)
    with pytest.raises(EstimatorInputError, match=r"^source holds negative values"):
        est.nce(p - 0.3, y)


@pytest.mark.parametrize(("name", "argument"), [("leep", "source_probs"), ("nce", "source")])
def test_fewer_probability_rows_than_labels_names_both_arguments(name: str, argument: str) -> None:
    _, y = _toy(40, 4, 2)
    p = np.random.default_rng(13).dirichlet(np.ones(5), size=30)
    with pytest.raises(EstimatorInputError, match=f"labels has 40 entries but {argument} has 30 rows"):
        getattr(est, name)(p, y)


@pytest.mark.parametrize("column", [np.arange(40) % 3, (np.arange(40) % 3).astype(float)], ids=["int", "float"])
def test_logme_refuses_one_column_of_class_ids_without_regression_true(column: np.ndarray) -> None:
    """Every other estimator refuses 2-D labels; LogME read ``y[:, None]`` as a regression target, silently."""
    f, _ = _toy(40, 8, 3)
    with pytest.raises(EstimatorInputError, match=r"labels\.ravel\(\).*regression=True"):
        est.logme(f, column[:, None])
    assert np.isfinite(est.logme(f, column[:, None], regression=True))


def test_nleep_on_features_of_large_scale_names_the_scale_not_only_the_component_count() -> None:
    """The mixture's covariance regulariser is absolute (scikit-learn's 1e-6): at a feature scale of 1e6 it steadies
    nothing and a covariance goes singular, with as few components as the task has classes."""
    f = np.random.default_rng(0).normal(size=(40, 100))
    y = np.arange(40) % 4
    assert np.isfinite(est.nleep(f, y))
    with pytest.raises(EstimatorInputError, match="features nearer unit scale"):
        est.nleep(f * 1e6, y)
