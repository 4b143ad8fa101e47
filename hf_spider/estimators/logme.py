"""LogME: the log maximum evidence of a Bayesian linear model on the features.

You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021 (evidence eq. 2,
fixed-point updates of alpha and beta eq. 3-5), and the fixed-point algorithm of You et al., "Ranking and Tuning
Pre-trained Models", JMLR 2022 (Algorithm 2). Reference: thuml/LogME ``LogME.py`` (commit 56551ca).

Every target column t (one 0/1 column per class, or one column per regression target) gets the evidence
``log p(t | F, alpha, beta)`` at its own maximising alpha, beta; the score is the mean over targets, divided by N.
All targets are solved at once: the alpha, beta iterations run as ``[T]`` tensors with a per-target stop mask.
On the CPU no eigenvector is formed: the Gram matrix is reduced to tridiagonal form, and each iteration's quadratic
terms come from one O(D) tridiagonal solve per target (``_tridiagonal_quad``); other devices use one eigh.

Departure from the reference (paper wins): ``log |A|`` with ``A = alpha I + beta F^T F`` [D, D] has D terms.
The reference sums ``log(alpha + beta s_i^2)`` over the retained singular values only, which drops
``(D - r) log alpha`` when the rank r < D (always when N < D). We keep that term, so N < D gives the paper's
evidence; when r = D (every published test vector) the two agree.

Features with no singular value above ``SVD_ZERO`` (all zero, or scaled far down, e.g. by 1e-12) raise
:class:`~hf_spider.errors.EstimatorInputError`: with nothing kept the fixed point divides 0 by 0 (NaN; for all-zero
features LAPACK's tridiagonal solver refused the system). The maximised evidence itself barely depends on the
features' scale (alpha absorbs it), but the reference's cutoff is absolute: at a scale of 1e-11 it already drops
singular values and the value moves. We keep that cutoff, so that we reproduce the reference wherever it gives a
number, and do not rescale behind the caller's back; the message says to rescale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..errors import EstimatorInputError
from . import _validate as validate
from ._linalg import eigh_project, gram, shifted_solves, tridiagonalize

if TYPE_CHECKING:
    import torch

#: Iteration cap of the alpha/beta fixed point (reference: "should converge after at most 10 steps").
MAX_ITER = 11
#: Relative change of lambda = alpha/beta that stops the fixed point (reference default path).
REL_TOL = 1e-3
#: Stop tolerance of the ICML-2021 solver (reference ``_fit_icml``: strict ``< 0.01``).
REL_TOL_ICML = 1e-2
#: Added to the quadratic terms in the alpha/beta updates (reference), avoiding division by zero.
EPS = 1e-5
#: Singular values at or below this are treated as zero (reference ``truncated_svd``).
SVD_ZERO = 1e-10

Method = Literal["fixed_point", "icml"]
#: ``lam`` [T] -> ``(m2, res2)`` [T], the quadratic terms of the fixed point (one per decomposition path).
Quad = Callable[["torch.Tensor"], tuple["torch.Tensor", "torch.Tensor"]]


def logme(
    features: Any,
    labels: Any,
    *,
    regression: bool | None = None,
    method: Method = "fixed_point",
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """LogME score of ``features`` [N, D] for ``labels``; higher is better.

    Args:
        features: ``[N, D]`` target-task features (used as given: not centred or scaled, like the reference).
        labels: ``[N]`` class ids 0..C-1 (classification), or ``[N, T]`` float targets (regression, multi-label).
            LogME is the one estimator that takes 2-D labels: each column is a real-valued target.
        regression: treat ``labels`` as real-valued targets; by default ``True`` exactly when ``labels`` is 2-D,
            except that a single column of whole numbers (``y[:, None]``: class ids or a real target?) is refused
            unless ``regression=True`` says it is a target.
        method: ``"fixed_point"`` (the reference's default) or ``"icml"`` (the ICML-2021 solver, used in papers).
        dtype: ``torch.float64`` (default) or ``torch.float32``.
        device: where to compute (``"cpu"``, ``"cuda"``, ...).

    Returns:
        The mean over targets of the maximum log evidence per sample.

    Raises:
        EstimatorInputError: malformed features or labels (the message names which and how to fix it), features
            with no singular value above ``SVD_ZERO``, one integer label column without ``regression=True``, or
            features on which the evidence is not finite (see :func:`_finite`).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.arange(100) % 2
        >>> logme(rng.normal(size=(100, 8)) + 3 * y[:, None], y) > logme(rng.normal(size=(100, 8)), y)
        True
    """
    dtype, dev = validate.resolve(dtype, device)
    validate.choice(method, ("fixed_point", "icml"), "method")
    F = validate.features(features, dtype=dtype, device=dev)
    N, D = F.shape
    Y = _targets(labels, N, regression=regression, dtype=dtype, device=dev)

    if method == "icml":
        return _finite(float(_evidence_icml(F, Y).mean()))
    # F = U diag(s) V^T; the evidence needs sigma = s^2 and quadratic forms of x = U^T t. Decompose the smaller Gram
    # matrix (the reference does the same when N > D; its thin SVD when N <= D has the same singular values).
    features_side = N > D
    K, P = (gram(F), gram(F, Y)) if features_side else (gram(F.T), Y)  # [D, D] and F^T Y [D, T], or [N, N], Y
    y2 = (Y * Y).sum(dim=0)  # |t|^2, [T]
    sigma, quad = (_tridiagonal_quad if F.device.type == "cpu" else _eigen_quad)(K, P, y2, features_side)
    if sigma.shape[0] == 0:
        raise _no_signal()
    return _finite(float(_evidence_fixed_point(sigma, quad, Y.shape[1], N, D).mean()))


def _finite(value: float) -> float:
    """``value``, or the error that says why the evidence is not a number.

    With N <= D the features can fit every target exactly, and when they are large (N=100, D=200 in float64: from
    ~1e7 for the fixed point, ~1e3 for the ICML solver; ~1e5 in float32) the residual degrees of freedom
    ``N - gamma`` round to zero or below, so the noise precision beta becomes 0 or negative and the evidence NaN.
    A NaN would rank anywhere; we raise instead.
    """
    if math.isfinite(value):
        return value
    raise EstimatorInputError(
        f"LogME's evidence is {value} for these features: the alpha/beta fixed point broke down (the noise precision "
        "beta reached zero or below), which happens when the linear model fits every target to rounding, typically "
        "with no more samples than feature dimensions and features far from unit scale; rescale the features (to unit "
        "variance, say)"
    )


def _eigen_quad(K: torch.Tensor, P: torch.Tensor, y2: torch.Tensor, features_side: bool) -> tuple[torch.Tensor, Quad]:
    """Kept eigenvalues sigma [r] and ``lam [T] -> (m2, res2) [T]`` in the eigenbasis (the reference's formulas)."""
    sigma, x = eigh_project(K, P)  # [D], V^T F^T Y or U^T Y [D, T]
    keep = sigma.clamp_min(0).sqrt() > SVD_ZERO
    sigma, x = sigma[keep], x[keep]
    if features_side:
        x = x / sigma.sqrt()[:, None]  # U^T Y with U = F V / s, never formed, [r, T]
    x2 = x * x  # [r, T]
    res_x2 = y2 - x2.sum(dim=0)  # part of |t|^2 outside the span of F, [T]
    s = sigma[:, None]  # [r, 1]

    def quad(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (s * x2 / (lam + s) ** 2).sum(dim=0), (x2 / (1 + s / lam) ** 2).sum(dim=0) + res_x2

    return sigma, quad


def _tridiagonal_quad(
    K: torch.Tensor, P: torch.Tensor, y2: torch.Tensor, features_side: bool
) -> tuple[torch.Tensor, Quad]:
    """:func:`_eigen_quad` without eigenvectors (CPU): ``K = Q S Q^T``, eigenvalues of S only, and per target one
    tridiagonal solve ``u = (S + lam I)^{-1} p`` with ``p = Q^T P``. With ``a = |u|^2`` and ``b = p . u``, the sums
    over eigenpairs become, for ``p = Q^T F^T t``: ``m2 = a``, ``res2 = |t|^2 - b - lam a``; for ``p = Q^T t``:
    ``m2 = b - lam a``, ``res2 = lam^2 a``. Eigenvalues at or below ``SVD_ZERO^2`` carry a zero (first case) or the
    same (second case) share of m2 and res2 as in the reference, so only gamma and log|A| need the kept eigenvalues.
    """
    import torch
    from scipy.linalg import eigvalsh_tridiagonal

    tri = tridiagonalize(K, P)
    sigma = torch.from_numpy(eigvalsh_tridiagonal(tri.d, tri.e, lapack_driver="sterf", check_finite=False))
    sigma = sigma[sigma.clamp_min(0).sqrt() > SVD_ZERO]

    def quad(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = (torch.from_numpy(v) for v in shifted_solves(tri, lam.numpy()))
        return (a, y2 - b - lam * a) if features_side else (b - lam * a, lam * lam * a)

    return sigma, quad


def _no_signal() -> EstimatorInputError:
    return EstimatorInputError(
        f"features carry no signal: no singular value is above {SVD_ZERO:g} (LogME's absolute cutoff, as in the "
        "reference), e.g. all-zero features or features scaled far down; check the feature extraction, or rescale "
        "the features (to unit variance, say)"
    )


def _targets(labels: Any, N: int, *, regression: bool | None, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[N, T]`` target matrix: one-hot classes, or the real-valued columns of a regression / multi-label task."""
    import torch

    raw = validate.as_tensor(labels, "labels")
    if regression is None:
        if raw.ndim == 2 and raw.shape[1] == 1 and (not raw.is_floating_point() or bool((raw == raw.round()).all())):
            raise EstimatorInputError(
                f"labels has shape {tuple(raw.shape)} of whole numbers: LogME reads 2-D labels as regression "
                "targets; pass a 1-D array (labels.ravel()) for class ids, or regression=True to score the column "
                "as one real-valued target"
            )
        regression = raw.ndim == 2
    if not regression:
        y, C = validate.labels(raw, N, device=device)
        return torch.nn.functional.one_hot(y, C).to(dtype)
    Y = validate.features(raw[:, None] if raw.ndim == 1 else raw, dtype=dtype, device=device, name="labels")
    if Y.shape[0] != N:
        raise EstimatorInputError(f"labels has {Y.shape[0]} rows but features has {N}; pass one target row per sample")
    return Y


def _evidence_fixed_point(sigma: torch.Tensor, quad: Quad, T: int, N: int, D: int) -> torch.Tensor:
    """``[T]`` evidences per sample, solving all T targets' fixed points together (JMLR 2022, Algorithm 2).

    ``sigma`` [r] kept squared singular values; ``quad(lam)`` gives each target's ``m2 = |m|^2`` and
    ``res2 = |t - F m|^2`` [T] at ``lam = alpha / beta`` [T] (:func:`_eigen_quad`, :func:`_tridiagonal_quad`).
    """
    import torch

    s = sigma[:, None]  # [r, 1]
    alpha = torch.ones(T, dtype=sigma.dtype, device=sigma.device)
    beta = torch.ones_like(alpha)
    active = torch.ones(T, dtype=torch.bool, device=sigma.device)
    m2 = res2 = torch.zeros_like(alpha)
    for _ in range(MAX_ITER):
        lam = alpha / beta
        gamma = (s / (s + lam)).sum(dim=0)
        new_m2, new_res2 = quad(lam)
        new_alpha = gamma / (new_m2 + EPS)
        new_beta = (N - gamma) / (new_res2 + EPS)
        # Targets that already stopped keep their last alpha, beta, m2, res2 (the reference's per-target break).
        m2, res2 = torch.where(active, new_m2, m2), torch.where(active, new_res2, res2)
        alpha, beta = torch.where(active, new_alpha, alpha), torch.where(active, new_beta, beta)
        active = active & ((alpha / beta - lam).abs() / lam > REL_TOL)
        if not bool(active.any()):
            break
    return _log_evidence(alpha, beta, sigma, m2, res2, N, D)


def _log_evidence(
    alpha: torch.Tensor,
    beta: torch.Tensor,
    sigma: torch.Tensor,
    m2: torch.Tensor,
    res2: torch.Tensor,
    N: int,
    D: int,
) -> torch.Tensor:
    """``[T]`` eq. 2 of the ICML paper divided by N; ``sigma`` [r] with ``r <= D`` eigenvalues of ``F^T F``.

    The ``D - r`` zero eigenvalues contribute ``log(alpha)`` each to ``log |A|`` (see the module docstring).
    """
    import torch

    logdet_A = torch.log(alpha[None, :] + beta[None, :] * sigma[:, None]).sum(dim=0) + (D - sigma.shape[0]) * torch.log(
        alpha
    )
    evidence = (
        D / 2 * torch.log(alpha)
        + N / 2 * torch.log(beta)
        - logdet_A / 2
        - beta / 2 * res2
        - alpha / 2 * m2
        - N / 2 * math.log(2 * math.pi)
    )
    return evidence / N


def _evidence_icml(F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``[T]`` evidences by the ICML-2021 solver (reference ``_fit_icml``): all D eigenpairs of ``F^T F``.

    The update of m uses the previous alpha, beta; the stop test is a relative change of alpha/beta below 0.01;
    ``EPS`` stays inside the evidence's quadratic terms, as in the reference.
    """
    import torch

    N, D = F.shape
    sigma, tmp = eigh_project(gram(F), gram(F, Y))  # [D]: zeros included, so log|A| has all D terms; V^T F^T t, [D, T]
    sigma = sigma.clamp_min(0)
    if not bool((sigma.sqrt() > SVD_ZERO).any()):
        raise _no_signal()
    y2 = (Y * Y).sum(dim=0)
    T = Y.shape[1]
    alpha = torch.ones(T, dtype=F.dtype, device=F.device)
    beta = torch.ones_like(alpha)
    active = torch.ones(T, dtype=torch.bool, device=F.device)
    m2 = res2 = torch.zeros_like(alpha)
    s = sigma[:, None]
    for _ in range(MAX_ITER):
        lam = alpha / beta
        gamma = (s / (s + lam)).sum(dim=0)
        mv = tmp * beta / (alpha + beta * s)  # V^T m, [D, T]
        new_m2 = (mv * mv).sum(dim=0)
        new_res2 = y2 - 2 * (tmp * mv).sum(dim=0) + (s * mv * mv).sum(dim=0)  # |t - F m|^2 in the eigenbasis
        new_alpha = gamma / (new_m2 + EPS)
        new_beta = (N - gamma) / (new_res2 + EPS)
        m2, res2 = torch.where(active, new_m2, m2), torch.where(active, new_res2, res2)
        alpha, beta = torch.where(active, new_alpha, alpha), torch.where(active, new_beta, beta)
        active = active & ((alpha / beta - lam).abs() / lam >= REL_TOL_ICML)
        if not bool(active.any()):
            break
    return _log_evidence(alpha, beta, sigma, m2 + EPS, res2 + EPS, N, D)
