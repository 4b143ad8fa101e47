"""Shared numerics of the estimators: class statistics, eigen-based pseudo-inverses, entropies and LEEP's core.

Everything here is batched over classes (``index_add`` and matrix products, never a Python loop over classes) and
works on whatever device and dtype its inputs have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def class_counts(labels: torch.Tensor, C: int, dtype: torch.dtype) -> torch.Tensor:
    """``[C]`` number of samples per class, as ``dtype``."""
    import torch

    return torch.bincount(labels, minlength=C).to(dtype)


def class_sums(x: torch.Tensor, labels: torch.Tensor, C: int) -> torch.Tensor:
    """``[C, D]`` per-class sums of the rows of ``x`` [N, D] (one scatter-add, no one-hot matrix)."""
    out = x.new_zeros((C, x.shape[1]))
    return out.index_add_(0, labels, x)


def class_means(x: torch.Tensor, labels: torch.Tensor, C: int) -> torch.Tensor:
    """``[C, D]`` per-class means of ``x`` [N, D]."""
    return class_sums(x, labels, C) / class_counts(labels, C, x.dtype)[:, None]


def one_hot(labels: torch.Tensor, C: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N, C]`` 0/1 matrix of ``labels``."""
    import torch

    return torch.nn.functional.one_hot(labels, C).to(dtype)


def covariance(x: torch.Tensor, *, ddof: int) -> torch.Tensor:
    """``[D, D]`` covariance of the rows of ``x`` [N, D] with divisor ``N - ddof``."""
    xc = x - x.mean(dim=0, keepdim=True)
    return xc.T @ xc / (x.shape[0] - ddof)


def default_rcond(shape: tuple[int, ...], dtype: torch.dtype) -> float:
    """Relative eigenvalue cutoff ``max(shape) * eps`` (the rank tolerance of ``numpy.linalg.matrix_rank``)."""
    import torch

    return max(shape) * torch.finfo(dtype).eps


def trace_pinv_gram(cov: torch.Tensor, B: torch.Tensor, *, rcond: float) -> float:
    """``trace(pinv(cov) @ B @ B.T)`` for a symmetric PSD ``cov`` [D, D] and ``B`` [D, C], via one ``eigh``.

    Equals ``|| Lambda^{-1/2} V^T B ||_F^2`` over the eigenpairs above ``rcond * max eigenvalue``; neither the
    pseudo-inverse nor the [D, D] product with ``B B^T`` is formed.
    """
    import torch

    evals, V = torch.linalg.eigh(cov)
    keep = evals > rcond * evals.abs().max()
    proj = V[:, keep].T @ B  # [r, C]
    return float((proj.square().sum(dim=1) / evals[keep]).sum())


def conditional_entropy(joint: torch.Tensor) -> torch.Tensor:
    """``H(B | A)`` from a joint distribution ``joint[a, b]`` that sums to one; zero-mass rows are skipped."""
    import torch

    p_a = joint.sum(dim=1, keepdim=True)
    cond = joint / torch.where(p_a > 0, p_a, torch.ones_like(p_a))
    return -(torch.special.xlogy(joint, cond)).sum()


def leep_score(theta: torch.Tensor, labels: torch.Tensor, C: int, *, eps: float = 0.0) -> float:
    """LEEP (Nguyen et al., ICML 2020, eq. 2) of probabilities ``theta`` [N, K] over any "source" classes z.

    The empirical joint ``P(y, z) = 1/N sum_{i: y_i = y} theta_iz`` gives ``P(y | z)``; the score is the mean log of
    the expected empirical prediction ``sum_z theta_iz P(y_i | z)``. ``eps`` is added to ``P(z)`` and to each
    prediction (Model-Spider's guards, used by N-LEEP); a source class with no mass gets ``P(y | z) = 0``.
    """
    import torch

    N = theta.shape[0]
    joint = class_sums(theta, labels, C) / N  # [C, K]
    p_z = joint.sum(dim=0, keepdim=True) + eps  # [1, K]
    cond = joint / torch.where(p_z > 0, p_z, torch.ones_like(p_z))  # P(y | z), [C, K]
    pred = (theta * cond[labels]).sum(dim=1) + eps  # [N]: sum_z theta_iz P(y_i | z)
    return float(torch.log(pred).mean())


def solve_spd(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A^-1 B`` for a symmetric positive (semi-)definite ``A`` [D, D]: Cholesky, or an eigen pseudo-inverse when
    round-off (float32, D > N) makes ``A`` numerically singular."""
    import torch

    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(B, L)
    evals, V = torch.linalg.eigh(A)
    keep = evals > default_rcond(tuple(A.shape), A.dtype) * evals.abs().max()
    return V[:, keep] @ ((V[:, keep].T @ B) / evals[keep][:, None])
