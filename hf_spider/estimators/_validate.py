"""Input checks shared by every estimator: one place that turns arrays into tensors and bad input into one clear error.

Every estimator accepts NumPy arrays, torch tensors or nested lists, and converts them here to a tensor of the
requested dtype on the requested device. Anything malformed raises :class:`~hf_spider.errors.EstimatorInputError`
(a ``ValueError``) whose message names the argument, the problem and the fix.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EstimatorInputError

if TYPE_CHECKING:
    import torch

#: Largest |row sum - 1| accepted for probabilities: float32 softmax over 1,000+ classes drifts by ~1e-6.
PROB_SUM_ATOL = 1e-4


def resolve(dtype: torch.dtype | None, device: str | torch.device | None) -> tuple[torch.dtype, torch.device]:
    """The dtype (float64 unless float32 is asked for) and device every tensor of one estimator call uses."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    if dtype not in (torch.float64, torch.float32):
        raise EstimatorInputError(
            f"dtype {dtype} is not supported; pass dtype=torch.float64 (default) or torch.float32"
        )
    return dtype, torch.device("cpu" if device is None else device)


def as_tensor(x: Any, name: str) -> torch.Tensor:
    import torch

    if isinstance(x, torch.Tensor):
        if x.is_complex():  # ``.to(float64)`` would drop the imaginary part with only a warning
            raise EstimatorInputError(f"{name} has dtype {x.dtype}; pass a real-valued tensor")
        return x.detach()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise EstimatorInputError(
            f"{name} could not be read as an array ({exc}); pass a NumPy array or tensor"
        ) from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise EstimatorInputError(f"{name} has dtype {arr.dtype}; pass a numeric NumPy array or tensor")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        # torch has no extended precision; the estimators compute in float64 at most, so nothing is lost that they
        # would use, and a value beyond float64's range becomes inf, which features() refuses.
        arr = arr.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(arr))


def features(x: Any, *, dtype: torch.dtype, device: torch.device, name: str = "features") -> torch.Tensor:
    """``[N, D]`` finite floating tensor with at least two rows, whose magnitude ``dtype`` can square (see
    :func:`magnitude_range`).

    Both checks read the caller's values before the cast to ``dtype``, so that float64 features beyond float32's range
    are refused as too large for float32, not reported as the infinities the cast would make of them.
    """
    t = as_tensor(x, name)
    if t.ndim != 2:
        raise EstimatorInputError(
            f"{name} must be 2-D [N, D], got shape {tuple(t.shape)}; reshape to one row per sample"
        )
    if t.shape[0] < 2 or t.shape[1] < 1:
        raise EstimatorInputError(f"{name} has shape {tuple(t.shape)}; pass at least 2 samples with at least 1 feature")
    _check_finite(t, name)
    _check_magnitude(t, name, dtype)
    return t.to(device=device, dtype=dtype)


def _check_finite(t: torch.Tensor, name: str) -> None:
    import torch

    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        n_bad = int(bad.reshape(t.shape[0], -1).any(dim=1).sum())
        raise EstimatorInputError(
            f"{name} holds NaN or inf values in {n_bad} row(s): what computed them is broken (a model with NaN "
            "weights, or one that overflows), not the samples; fix or drop that model"
        )


def magnitude_range(dtype: torch.dtype) -> tuple[float, float]:
    """``(low, high)``: the range of ``max |x|`` over a feature matrix that the estimators can work with in ``dtype``.

    Every estimator squares the features and sums the squares (covariances, Gram matrices, norms): from ~1e160 in
    float64 (~1e20 in float32) most of them raised bare LAPACK or overflow errors or returned NaN, and below ~1e-160
    the H-scores silently lost all variation (the squares underflow to zero) and scored 0. The bounds keep
    ``1 / eps`` of headroom on both sides of the squares: ``high^2 = max * eps``, so that sums of up to ``1 / eps``
    squares stay finite, and ``low^2 = tiny / eps``, so that the square of the largest entry keeps full precision.
    In float64 that is about ``[1e-146, 2e146]``, in float32 ``[3e-16, 6e15]``.
    """
    import torch

    info = torch.finfo(dtype)
    return math.sqrt(info.tiny / info.eps), math.sqrt(info.max * info.eps)


def _check_magnitude(t: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    """Raise unless the largest ``|x|`` of finite ``t`` is 0 or within :func:`magnitude_range` of ``dtype``.

    All-zero features pass: each estimator has its own rule for features that do not vary.
    """
    import torch

    size = t.abs() if t.is_floating_point() else t.to(torch.float64).abs()  # int64's minimum has no int64 abs
    amax = float(size.max())
    low, high = magnitude_range(dtype)
    if amax == 0.0 or low <= amax <= high:
        return
    low64, high64 = magnitude_range(torch.float64)
    in_float64 = ", or pass dtype=torch.float64" if dtype != torch.float64 and low64 <= amax <= high64 else ""
    if amax > high:
        over = (size > high).any(dim=0)
        raise EstimatorInputError(
            f"{name} reach |x| = {amax:.3g} in {int(over.sum())} of {t.shape[1]} columns (first: column "
            f"{int(over.nonzero()[0])}), beyond what {dtype} arithmetic can square and sum (|x| <= {high:.3g}): a "
            "model whose activations blew up, or values in the wrong unit; fix the model that computed them, or "
            f"rescale them (e.g. divide by their largest absolute value){in_float64}"
        )
    raise EstimatorInputError(
        f"{name} are all within |x| <= {amax:.3g}, too small for {dtype} arithmetic to square without underflow "
        f"(the largest |x| must be at least {low:.3g}); check the feature extraction, or rescale them (e.g. divide "
        f"by their largest absolute value){in_float64}"
    )


def _integer_vector(x: Any, n: int, name: str, device: torch.device, rows_of: str | None = None) -> torch.Tensor:
    import torch

    t = as_tensor(x, name)
    if t.ndim != 1:
        raise EstimatorInputError(f"{name} must be 1-D [N], got shape {tuple(t.shape)}; pass one class id per sample")
    if t.shape[0] != n:
        if rows_of is not None:  # n is another argument's length: either may be the wrong one
            raise EstimatorInputError(
                f"{name} has {t.shape[0]} entries but {rows_of} has {n} rows; pass one row per sample in both"
            )
        raise EstimatorInputError(f"{name} has {t.shape[0]} entries but there are {n} samples; pass one per sample")
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or not bool((t == t.round()).all()):
            raise EstimatorInputError(f"{name} holds non-integer values; pass integer class ids 0..C-1")
    elif t.dtype == torch.bool:
        raise EstimatorInputError(f"{name} is boolean; pass integer class ids 0..C-1")
    t = t.to(device=device, dtype=torch.long)
    if bool((t < 0).any()):
        raise EstimatorInputError(f"{name} holds negative values; pass integer class ids 0..C-1")
    return t


def labels(
    y: Any, n: int, *, device: torch.device, name: str = "labels", rows_of: str | None = None
) -> tuple[torch.Tensor, int]:
    """``[N]`` int64 class ids, every class of ``0..C-1`` present and ``C >= 2``; returns the ids and ``C``.

    ``rows_of`` names the argument ``n`` was read from (the source probabilities of LEEP and NCE), so that a length
    mismatch names both arguments instead of blaming the labels.

    References take ``C = max(y) + 1`` and silently score empty classes; we refuse instead, because an empty class
    changes LogME, H-score and GBC without any sample to justify it.
    """
    import torch

    t = _integer_vector(y, n, name, device, rows_of)
    C = int(t.max()) + 1
    present = torch.bincount(t, minlength=C) > 0
    if not bool(present.all()):
        missing = torch.nonzero(~present).flatten()[:5].tolist()
        raise EstimatorInputError(
            f"{name} are not contiguous 0..C-1: class id(s) {missing} of 0..{C - 1} have no sample; "
            "re-index with numpy.unique(labels, return_inverse=True)[1]"
        )
    if C < 2:
        raise EstimatorInputError(f"{name} hold a single class; transferability needs at least 2 classes")
    return t, C


def features_and_labels(
    features_: Any, labels_: Any, dtype: torch.dtype | None, device: str | torch.device | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(features [N, D], labels [N], classes)`` checked, on one dtype and device: most estimators' inputs."""
    dtype, dev = resolve(dtype, device)
    F = features(features_, dtype=dtype, device=dev)
    y, C = labels(labels_, F.shape[0], device=dev)
    return F, y, C


def source_labels(z: Any, n: int, *, device: torch.device, name: str = "source_labels") -> torch.Tensor:
    """``[N]`` non-negative int64 ids of source classes (gaps allowed: most source classes never win the argmax)."""
    return _integer_vector(z, n, name, device)


def probabilities(
    p: Any, n: int | None = None, *, dtype: torch.dtype, device: torch.device, name: str = "source_probs"
) -> torch.Tensor:
    """``[N, K]`` non-negative rows that sum to one (within :data:`PROB_SUM_ATOL`); ``n`` checks N if given."""
    import torch

    t = features(p, dtype=dtype, device=device, name=name)
    if n is not None and t.shape[0] != n:
        raise EstimatorInputError(f"{name} has {t.shape[0]} rows but there are {n} samples; pass one row per sample")
    if bool((t < 0).any()):
        raise EstimatorInputError(f"{name} holds negative values; pass softmax probabilities, not logits")
    err = (t.sum(dim=1) - 1).abs()
    if bool((err > PROB_SUM_ATOL).any()):
        worst = int(torch.argmax(err))
        raise EstimatorInputError(
            f"{name} rows must sum to 1 but row {worst} sums to {float(t[worst].sum()):.6g}; "
            "apply a softmax over the source classes first"
        )
    return t


def same_rows(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    """Raise unless two per-sample arrays have the same number of rows."""
    if a.shape[0] != b.shape[0]:
        raise EstimatorInputError(
            f"{a_name} has {a.shape[0]} rows but {b_name} has {b.shape[0]}; pass one row per sample in both"
        )


def choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    """Raise unless an option string is one of ``allowed``."""
    if value not in allowed:
        raise EstimatorInputError(f"{name}={value!r} is not supported; pass one of {', '.join(map(repr, allowed))}")
    return value
