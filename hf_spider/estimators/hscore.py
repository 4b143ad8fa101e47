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
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import _validate as validate
from ._linalg import class_counts, class_means, default_rcond, trace_pinv_gram

if TYPE_CHECKING:
    import torch


def hscore(
    features: Any,
    labels: Any,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """H-score of ``features`` [N, D] for ``labels`` [N]; higher is better.

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
    N = F.shape[0]
    Fc = F - F.mean(dim=0, keepdim=True)
    cov_f = Fc.T @ Fc / (N - 1)
    return trace_pinv_gram(cov_f, _between_factor(Fc, y, C), rcond=default_rcond(tuple(F.shape), F.dtype))


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
    ``sum(X2^T X2) = sum_i |x_i|^4`` and ``sum((X^T X)^2) = ||X^T X||_F^2``.

    Raises:
        EstimatorInputError: malformed features or labels.
    """
    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    N, D = F.shape
    X = F - F.mean(dim=0, keepdim=True)
    emp_cov = X.T @ X / N
    mu = float(emp_cov.trace()) / D
    beta_ = float((X.square().sum(dim=1) ** 2).sum())  # sum of <X2^T, X2>
    delta_ = float(emp_cov.square().sum())  # ||X^T X||_F^2 / N^2
    beta = (beta_ / N - delta_) / (D * N)
    delta = (delta_ - 2 * mu * float(emp_cov.trace()) + D * mu**2) / D
    a = 0.0 if min(beta, delta) == 0 else min(beta, delta) / delta
    shrunk = (1 - a) * emp_cov
    shrunk.diagonal().add_(a * mu)
    B = _between_factor(X, y, C) * math.sqrt(1 - a)
    return trace_pinv_gram(shrunk, B, rcond=default_rcond(tuple(F.shape), F.dtype))


def _between_factor(Fc: torch.Tensor, y: torch.Tensor, C: int) -> torch.Tensor:
    """``B`` [D, C] with ``B B^T`` = covariance (divisor N - 1) of the per-sample class means of centred ``Fc``."""
    N = Fc.shape[0]
    n_c = class_counts(y, C, Fc.dtype)
    return (class_means(Fc, y, C) * (n_c / (N - 1)).sqrt()[:, None]).T
