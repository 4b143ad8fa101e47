"""H-score and its shrinkage-regularised variant.

Bao et al., "An Information-Theoretic Approach to Transferability in Task Transfer Learning", ICIP 2019, Def. 2:
``H(f) = tr(cov(f)^+ cov(E[f | y]))``. Regularised: Ibrahim et al., "Newer is Not Always Better: Rethinking
Transferability Metrics, Their Peculiarities, Stability and Performance", ECML-PKDD 2022, eq. 5 (Ledoit-Wolf shrunk
feature covariance). References: zhangyikaii/Model-Spider ``mptms/H_Score.py`` and TransferGraph
``.../baseline/methods/hscore_reg.py``.

Departure from the references: they take ``pinv(cov, rcond=1e-15)``. When D >= N the covariance has rank < D and
its round-off eigenvalues (~1e-16 x the largest, times D) pass that cutoff and are inverted, so the score explodes.
We cut at ``max(N, D) x machine epsilon`` (NumPy's rank tolerance), which keeps every eigenvalue when the covariance is
well conditioned (all published test vectors) and drops the numerical null space otherwise.

Features that do not vary (the same embedding for every sample: a dead model) score 0, the exact value
(``pinv(0) = 0``, as the references give for all-zero features). A relative cutoff alone cannot see this: centring
leaves the mean's rounding error in every row, a rank-1 covariance of ~1e-31 whose only eigenvalue is its own
largest, and the score came out ~1 (above informative features). So the features are centred in two passes
(:func:`~._linalg.centre`) and the cutoff has an absolute floor, ``eps |F|_F`` on the singular values of the centred
features with ``F`` uncentred (:func:`~._linalg.scale_floor`): variation below the rounding of the features
themselves is zero. Features whose centred norm is below that floor score 0 (both scores), without a decomposition.

Shortcut (exact) when D > N: the centred features have rank <= N - 1, and the between-class factor ``B`` lies in
their row span (``B = X^T W``, below), so both scores need only the [N, N] Gram matrix ``X X^T = U S^2 U^T``:
``H = (N - 1) sum_kept |U_i^T W|^2``, and with the Ledoit-Wolf matrix ``(1 - a) X^T X / N + a mu I`` (eigenvalues
``(1 - a) s_i^2 / N + a mu`` on the span, ``a mu`` on its complement, where ``B`` has no component: Woodbury)
``H_reg = (1 - a) sum_kept s_i^2 |U_i^T W|^2 / ((1 - a) s_i^2 / N + a mu)``. Same cutoffs, same value; at D = 4,096
this replaces a [D, D] eigendecomposition (seconds) by an [N, N] one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import _validate as validate
from ._linalg import (
    centre,
    class_counts,
    class_means,
    default_rcond,
    eigh_project,
    gram,
    one_hot,
    power_of_two_scale,
    scale_floor,
    trace_pinv_gram,
)

if TYPE_CHECKING:
    import torch


def hscore(
    features: Any,
    labels: Any,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """H-score of ``features`` [N, D] for ``labels`` [N]; higher is better (0 for features that do not vary).

    ``cov_g`` is the covariance (divisor N - 1) of each sample's class mean, which equals
    ``B B^T`` with ``B = [sqrt(n_c / (N - 1)) (mu_c - mu)]`` [D, C], so no [N, D] class-mean matrix is built.

    Raises:
        EstimatorInputError: malformed features or labels.

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 2
        >>> f = np.random.default_rng(0).normal(size=(200, 4))
        >>> hscore(f + 5 * y[:, None], y) > hscore(f, y)
        True
    """
    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    N, D = F.shape
    X = centre(F)
    floor = scale_floor(F)  # singular values of X at or below it are zero
    if float(X.norm()) <= floor:
        return 0.0
    rcond = default_rcond(tuple(F.shape), F.dtype)
    if D > N:
        s2, UW = _sample_space(X, y, C)  # [N], [N, C]
        keep = (s2 > rcond * float(s2.max())) & (s2.sqrt() > floor)
        return float((N - 1) * UW[keep].square().sum())
    cov_f = X.T @ X / (N - 1)
    return trace_pinv_gram(cov_f, _between_factor(X, y, C), rcond=rcond, floor=floor**2 / (N - 1))


def reg_hscore(
    features: Any,
    labels: Any,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """Regularised H-score: ``tr(cov_LW^-1 (1 - a) cov_g)`` with the Ledoit-Wolf shrunk covariance; higher is better.

    The shrinkage ``a`` is Ledoit and Wolf's (2004) estimate as computed by ``sklearn.covariance.ledoit_wolf`` on the
    centred features (empirical covariance with divisor N), without forming any [N, N] or [N, D, D] array:
    ``sum(X2^T X2) = sum_i |x_i|^4`` and ``sum((X^T X)^2) = ||X^T X||_F^2``. Features that do not vary score 0.

    Raises:
        EstimatorInputError: malformed features or labels.
    """
    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    # The score is scale-free, and beta_ sums fourth powers of the features: they overflowed from ~1e75 (float32:
    # ~1e10) and underflowed, changing the score, below ~1e-80 (float32: ~1e-15).
    F = F / power_of_two_scale(F)
    N, D = F.shape
    X = centre(F)
    if float(X.norm()) <= scale_floor(F):
        return 0.0
    rcond = default_rcond(tuple(F.shape), F.dtype)
    beta_ = float((X.square().sum(dim=1) ** 2).sum())  # sum of <X2^T, X2>
    if D > N:
        s2, UW = _sample_space(X, y, C)  # [N], [N, C]
        emp_trace = float(s2.sum()) / N
        delta_ = float(s2.square().sum()) / N**2  # ||X^T X||_F^2 / N^2 = sum s^4 / N^2
    else:
        emp_cov = X.T @ X / N
        emp_trace = float(emp_cov.trace())
        delta_ = float(emp_cov.square().sum())  # ||X^T X||_F^2 / N^2
    mu = emp_trace / D
    beta = (beta_ / N - delta_) / (D * N)
    delta = (delta_ - 2 * mu * emp_trace + D * mu**2) / D
    a = 0.0 if min(beta, delta) == 0 else min(beta, delta) / delta
    if D > N:
        evals = (1 - a) * s2 / N + a * mu  # the shrunk covariance on the span of X; a mu on its complement
        keep = evals > rcond * float(evals.max())
        return float(((1 - a) * s2[keep] * UW[keep].square().sum(dim=1) / evals[keep]).sum())
    shrunk = (1 - a) * emp_cov
    shrunk.diagonal().add_(a * mu)
    B = _between_factor(X, y, C) * math.sqrt(1 - a)
    return trace_pinv_gram(shrunk, B, rcond=rcond)


def _between_factor(Fc: torch.Tensor, y: torch.Tensor, C: int) -> torch.Tensor:
    """``B`` [D, C] with ``B B^T`` = covariance (divisor N - 1) of the per-sample class means of centred ``Fc``."""
    N = Fc.shape[0]
    n_c = class_counts(y, C, Fc.dtype)
    return (class_means(Fc, y, C) * (n_c / (N - 1)).sqrt()[:, None]).T


def _sample_space(X: torch.Tensor, y: torch.Tensor, C: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared singular values ``s^2`` [N] of centred ``X`` [N, D] and ``U^T W`` [N, C], from ``X X^T = U S^2 U^T``.

    ``W`` [N, C] = ``one_hot(y) / sqrt(n_c (N - 1))`` gives ``B = X^T W`` (:func:`_between_factor`), so
    ``V^T B = S U^T W``: the [D, D] side is never formed. ``X X^T`` comes from BLAS syrk on the CPU (lower triangle,
    all :func:`~._linalg.eigh_project` reads, which also skips forming U on the CPU).
    """
    N = X.shape[0]
    W = one_hot(y, C, X.dtype) / (class_counts(y, C, X.dtype) * (N - 1)).sqrt()  # [N, C]
    s2, UW = eigh_project(gram(X.T), W)  # ascending, [N], [N, C]
    return s2.clamp_min(0), UW
