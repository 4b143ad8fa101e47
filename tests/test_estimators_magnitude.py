"""Every registered estimator on features of any magnitude and dtype: a finite value or one EstimatorInputError.

Features of ~1e200 (or one such column), of ~1e-200, or beyond float32's range under ``dtype=torch.float32`` raised
bare LAPACK, scipy or overflow errors, POT warnings, or returned NaN; inside the accepted range some estimators
failed on their fourth and higher powers of the features. The estimators are read from the registry, so a new one is
held to the same rule.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_spider import estimators as est
from hf_spider.errors import EstimatorInputError

validate = importlib.import_module("hf_spider.estimators._validate")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = sorted(est.ESTIMATORS)
DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: Scale-free by definition (tests/test_estimators_properties.py): their value at any accepted scale is known.
SCALE_INVARIANT = ["hscore", "reg_hscore", "lfc"]
#: The shared check's two messages (too large, too small).
OUT_OF_RANGE = r"beyond what torch\.float(64|32) arithmetic can square|too small for torch\.float(64|32) arithmetic"


def _task(n: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Every input any estimator takes, at unit scale: class-separated features, labels, probabilities, a source."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    logits = rng.normal(size=(n, 5)) + 2 * np.eye(5)[y]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {
        "features": rng.normal(size=(n, d)) + 2 * rng.normal(size=(3, d))[y],
        "labels": y,
        "source_probs": p / p.sum(axis=1, keepdims=True),
        "source_features": rng.normal(size=(n, d)),
        "source_labels": rng.permutation(y),
    }


def _call(name: str, task: dict[str, np.ndarray], dtype: torch.dtype) -> float | EstimatorInputError:
    """The estimator's value, or the EstimatorInputError it raised; anything else (a warning too) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            value = est.ESTIMATORS[name](**task, dtype=dtype)
        except EstimatorInputError as exc:
            return exc
    assert isinstance(value, float)
    assert math.isfinite(value), f"{name} returned {value}"
    return value


def _rescaled(task: dict[str, np.ndarray], features: Any, source: Any) -> dict[str, np.ndarray]:
    return {**task, "features": features(task["features"]), "source_features": source(task["source_features"])}


def _column(scale: float) -> Any:
    def scaled(f: np.ndarray) -> np.ndarray:
        out = f.copy()
        out[:, 0] *= scale
        return out

    return scaled


EXTREMES = {
    "all-1e200": lambda f: f * 1e200,
    "one-column-1e200": _column(1e200),
    "all-1e-200": lambda f: f * 1e-200,
    "mixed-1e-200-1e200": lambda f: np.where(np.arange(f.shape[1]) % 2 == 0, f * 1e-200, f * 1e200),
}


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", EXTREMES.values(), ids=EXTREMES.keys())
@pytest.mark.parametrize("name", NAMES)
def test_extreme_features_give_one_clear_error(name: str, case: Any, dtype: torch.dtype) -> None:
    """Out of range in either dtype: the shared check refuses them, naming the size and the fix."""
    task = _task(40, 6)
    outcome = _call(name, _rescaled(task, case, case), dtype)
    if "features" not in est.ESTIMATORS[name].inputs:  # LEEP and NCE read only the probabilities
        assert outcome == _call(name, task, dtype)
        return
    assert isinstance(outcome, EstimatorInputError)
    assert str(outcome).startswith("features ")
    assert "rescale them (e.g. divide by their largest absolute value)" in str(outcome)


INPUT_DTYPES = {
    "float16": lambda f: f.astype(np.float16),
    "float32": lambda f: f.astype(np.float32),
    "longdouble": lambda f: f.astype(np.longdouble),
    "int64": lambda f: np.round(10 * f).astype(np.int64),
    "uint8": lambda f: np.round(10 * (f - f.min())).astype(np.uint8),
    "torch-bfloat16": lambda f: torch.from_numpy(f).to(torch.bfloat16),
}


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("convert", INPUT_DTYPES.values(), ids=INPUT_DTYPES.keys())
@pytest.mark.parametrize("name", NAMES)
def test_features_of_any_numeric_dtype_are_scored(name: str, convert: Any, dtype: torch.dtype) -> None:
    """Unit-scale features handed over as float16, float32, long double (a bare TypeError), integers or bfloat16."""
    outcome = _call(name, _rescaled(_task(40, 6), convert, convert), dtype)
    assert isinstance(outcome, float)


@pytest.mark.parametrize("name", [n for n in NAMES if "features" in est.ESTIMATORS[n].inputs])
def test_float64_features_beyond_float32_are_refused_for_float32_not_called_nan(name: str) -> None:
    """The cast to float32 made them inf, and the message blamed a model with NaN weights; they score in float64."""
    task = _rescaled(_task(40, 6), lambda f: f * 1e30, lambda f: f * 1e30)
    outcome = _call(name, task, torch.float32)
    assert isinstance(outcome, EstimatorInputError)
    assert "NaN" not in str(outcome)
    assert str(outcome).endswith("or pass dtype=torch.float64")
    assert isinstance(_call(name, task, torch.float64), float)


def test_the_message_names_the_columns_out_of_range() -> None:
    task = _task(40, 6)
    f = task["features"].copy()
    f[:, [2, 4]] *= 1e200
    with pytest.raises(EstimatorInputError, match=r"^features reach \|x\| = \S+ in 2 of 6 columns \(first: column 2\)"):
        est.hscore(f, task["labels"])


def test_a_complex_tensor_is_refused_not_cast_to_its_real_part() -> None:
    task = _task(40, 6)
    with pytest.raises(EstimatorInputError, match="real-valued tensor"):
        est.hscore(torch.from_numpy(task["features"]).to(torch.complex128), task["labels"])


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    exponent=st.integers(-320, 306),  # features up to ~10: 1e307
    one_column=st.booleans(),
    wide=st.booleans(),
    dtype=st.sampled_from(list(DTYPES.values())),
)
def test_any_scale_gives_a_finite_value_or_one_clear_error(
    name: str, exponent: int, one_column: bool, wide: bool, dtype: torch.dtype
) -> None:
    """Features scaled by 10^exponent (all, or one column), N > D or N < D: never a bare error, warning or NaN.

    Out of :func:`magnitude_range` the shared check refuses them; in range, the scale-free estimators give their
    unit-scale value (Reg-H-score and LFC raised or drifted on fourth powers, SFDA on eighth, TransRate's Cholesky
    failed, LogME returned NaN).
    """
    task = _task(30, 50 if wide else 6, seed=exponent % 7)
    scale = 10.0**exponent
    rescale = _column(scale) if one_column else (lambda f: f * scale)
    scaled = _rescaled(task, rescale, rescale)
    outcome = _call(name, scaled, dtype)
    if "features" not in est.ESTIMATORS[name].inputs:
        return
    low, high = validate.magnitude_range(dtype)
    amax = max(float(np.abs(scaled["features"]).max()), float(np.abs(scaled["source_features"]).max()))
    if not low <= amax <= high:
        assert isinstance(outcome, EstimatorInputError)
        assert re.search(OUT_OF_RANGE, str(outcome)), str(outcome)
    elif name in SCALE_INVARIANT and not one_column:
        assert outcome == pytest.approx(_call(name, task, dtype), rel=1e-9 if dtype == torch.float64 else 1e-3)


# ------------------------------------------------------------------------------- inside the range: one test per fix


@pytest.mark.parametrize("name", SCALE_INVARIANT)
@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(torch.float64, 1e100), (torch.float64, 1e-100), (torch.float32, 1e14), (torch.float32, 1e-14)],
    ids=["float64-1e100", "float64-1e-100", "float32-1e14", "float32-1e-14"],
)
@pytest.mark.parametrize("wide", [False, True], ids=["N>D", "N<D"])
def test_scale_free_estimators_keep_their_value_far_from_unit_scale(
    name: str, dtype: torch.dtype, scale: float, wide: bool
) -> None:
    """Reg-H-score's shrinkage and LFC's kernel norm sum fourth powers of the features: they overflowed (a bare
    OverflowError or LinAlgError), underflowed (another value), or LFC called the kernel constant."""
    task = _task(30, 50 if wide else 6)
    fn = getattr(est, name)
    expected = fn(task["features"], task["labels"], dtype=dtype)
    assert fn(scale * task["features"], task["labels"], dtype=dtype) == pytest.approx(
        expected, rel=1e-9 if dtype == torch.float64 else 1e-4
    )


def test_sfda_power_iteration_neither_overflows_nor_underflows() -> None:
    """Its norms square the eighth power of the features: NaN shrinkage, then a bare LinAlgError (or chance, 1/C).
    The shrinkage saturates (1e-10 above unit scale, 1 far below), so the score is flat out there."""
    task = _task(30, 6)
    f, y = task["features"], task["labels"]
    assert est.sfda(1e60 * f, y) == pytest.approx(est.sfda(1e3 * f, y), rel=1e-9)
    assert est.sfda(1e-60 * f, y) == pytest.approx(est.sfda(1e-20 * f, y), rel=1e-9)
    assert est.sfda(1e5 * f, y, dtype=torch.float32) == pytest.approx(est.sfda(1e5 * f, y), rel=1e-4)


@pytest.mark.parametrize("scale", [1e2, 1e12])
def test_transrate_with_fewer_samples_than_dimensions_in_float32(scale: float) -> None:
    """The whole set's Gram matrix is singular (N < D, centred); round-off made I + G / (n eps) indefinite and the
    Cholesky factor failed with a bare LinAlgError. The eigenvalue fallback matches float64."""
    task = _task(30, 50)
    f, y = scale * task["features"], task["labels"]
    assert est.transrate(f, y, dtype=torch.float32) == pytest.approx(est.transrate(f, y), rel=1e-5)


@pytest.mark.parametrize(
    ("method", "dtype", "scale"),
    [("fixed_point", torch.float64, 1e8), ("fixed_point", torch.float32, 1e3), ("icml", torch.float64, 1e8)],
)
def test_logme_refuses_an_evidence_that_is_not_a_number(method: str, dtype: torch.dtype, scale: float) -> None:
    """N < D and large features: N - gamma rounds to zero or below, beta follows, and LogME returned NaN."""
    task = _task(30, 50)
    with pytest.raises(EstimatorInputError, match=r"^LogME's evidence is nan for these features: .* rescale"):
        est.logme(scale * task["features"], task["labels"], method=method, dtype=dtype)  # type: ignore[arg-type]
