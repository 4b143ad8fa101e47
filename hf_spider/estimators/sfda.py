"""SFDA: self-challenging Fisher discriminant analysis.

Shao et al., "Not All Models Are Equal: Predicting Model Transferability in a Self-challenging Fisher Space",
ECCV 2022, eq. 3-7 (regularised Fisher LDA, ConfMix, refit). Reference: TencentARC/SFDA's metric as copied into
TransferGraph ``.../baseline/methods/sfda.py``.

Shortcut (exact): the reference solves the generalised eigenproblem ``S_b v = w S_w v`` for all D eigenvectors,
B-normalised, and builds ``coef = means V V^T``. With every eigenvector kept, ``V V^T = S_w^-1``, so ``coef`` is one
Cholesky solve with the shrunk within-class scatter; ``S_b`` is never needed. The adaptive shrinkage copies the
reference's 3-step power iteration for the largest eigenvalue of ``S_w`` (the exact eigenvalue moves the score by up
to ~1e-2 relative), and the probabilities of the first fit go through a softmax twice, as in the reference.

SFDA needs variation within classes: when every sample equals its class mean (one sample per class, two samples in
all, or features that do not vary), ``S_w = 0``, the power iteration divides 0 by 0 and the reference's shrinkage is
NaN (its eigensolver then fails). That raises :class:`~hf_spider.errors.EstimatorInputError`; "equals" is up to the
rounding of the features (``S_w`` is recomputed from twice-centred residuals and compared with
:func:`~._linalg.scale_floor`), since a constant column leaves the mean's rounding error, not zero.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import EstimatorInputError
from . import _validate as validate
from ._linalg import class_counts, class_means, power_of_two_scale, scale_floor, solve_spd

if TYPE_CHECKING:
    import torch

#: Power-iteration steps for the largest eigenvalue of S_w (reference ``iterative_A``).
POWER_STEPS = 3
#: Smallest adaptive shrinkage (reference).
MIN_SHRINKAGE = 1e-10


def sfda(
    features: Any,
    labels: Any,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """SFDA score of ``features`` [N, D] for ``labels`` [N]: mean probability of the true class; higher is better.

    Raises:
        EstimatorInputError: malformed features or labels, or no variation within any class (every sample equals
            its class mean: one sample per class, or features that do not vary).

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 2
        >>> f = np.random.default_rng(0).normal(size=(200, 4))
        >>> sfda(f + 5 * y[:, None], y) > sfda(f, y)
        True
    """
    import torch

    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    F = F.clone()  # modified in place below; never the caller's tensor
    N = F.shape[0]
    log_priors = torch.log(class_counts(y, C, F.dtype) / N)

    means = class_means(F, y, C)
    _check_within_class_variation(F, y, C, means)
    Sw = _within_scatter(F, y, means)
    shrinkage = max(math.exp(-5 * _power_eigenvalue(Sw)), MIN_SHRINKAGE)
    p = torch.softmax(_lda_logits(F, means, _shrink(Sw, shrinkage), log_priors), dim=1)
    p = torch.softmax(p, dim=1)  # second softmax: reference behaviour, kept for comparability

    # ConfMix (eq. 6): move each sample towards the average of the *other* classes' means by 1 - p(true class).
    others = (means.sum(dim=0, keepdim=True) - means) / (C - 1)  # [C, D]
    p_true = p[torch.arange(N, device=F.device), y][:, None]  # [N, 1]
    F = p_true * F + (1 - p_true) * others[y]

    means = class_means(F, y, C)
    Sw = _within_scatter(F, y, means)
    p2 = torch.softmax(_lda_logits(F, means, _shrink(Sw, shrinkage), log_priors), dim=1)
    return float(p2[torch.arange(N, device=F.device), y].mean())


def _within_scatter(F: torch.Tensor, y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """``S_w`` [D, D] = sum_c prior_c x population covariance of class c = ``(F - M_y)^T (F - M_y) / N``."""
    R = F - means[y]
    return R.T @ R / F.shape[0]


def _check_within_class_variation(F: torch.Tensor, y: torch.Tensor, C: int, means: torch.Tensor) -> None:
    """Raise unless some sample differs from its class mean by more than the rounding of the features."""
    R = F - means[y]
    R = R - class_means(R, y, C)[y]  # second pass: a constant column's residual is the mean's rounding error
    if float(R.norm()) <= scale_floor(F):
        raise EstimatorInputError(
            f"SFDA needs variation within classes, but each of the {F.shape[0]} samples equals the mean of its "
            f"class ({C} classes) up to rounding: one sample per class, features that do not vary, or features "
            "collapsed to one point per class; pass several samples per class of a model whose features vary"
        )


def _power_eigenvalue(A: torch.Tensor) -> float:
    """Largest eigenvalue estimate of symmetric ``A`` exactly as the reference computes it (``iterative_A``).

    The iteration is run on ``A / s`` with ``s`` a power of two and scaled back, which is exact: on ``A`` itself its
    norms square ``A^2 1``, the eighth power of the features, which overflowed from features of ~1e40 in float64 and
    ~1e5 in float32 (N=1,000, D=768) and underflowed below ~1e-50 in float64. The shrinkage was then NaN, and SFDA
    came out at chance (1/C) or raised a bare LinAlgError.
    """
    s = power_of_two_scale(A)
    return s * _power_iteration(A / s)


def _power_iteration(A: torch.Tensor) -> float:
    x = A.sum(dim=1)
    y = x
    for _ in range(POWER_STEPS):
        t = A @ x
        y = t / t.norm()
        t = A @ y
        x = t / t.norm()
    return float(x @ (A @ y))


def _shrink(M: torch.Tensor, s: float) -> torch.Tensor:
    """``(1 - s) M + s (trace(M) / D) I``."""
    out = (1 - s) * M
    out.diagonal().add_(s * float(M.trace()) / M.shape[0])
    return out


def _lda_logits(F: torch.Tensor, means: torch.Tensor, Sw_s: torch.Tensor, log_priors: torch.Tensor) -> torch.Tensor:
    """``[N, C]`` LDA logits ``F coef^T + intercept`` with ``coef = means S_w^-1`` (see the module docstring)."""

    coef = solve_spd(Sw_s, means.T).T  # [C, D]
    intercept = -0.5 * (means * coef).sum(dim=1) + log_priors
    return F @ coef.T + intercept
