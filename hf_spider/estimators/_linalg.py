"""Shared numerics of the estimators: class statistics, eigen-based pseudo-inverses, entropies and LEEP's core.

Everything here is batched over classes (``index_add`` and matrix products) and works on whatever device and dtype
its inputs have. On the CPU, :func:`gram`, :func:`tridiagonalize` and :func:`eigh_project` hand the O(N D^2) and
O(D^3) work to SciPy's BLAS and LAPACK, which expose the cheaper routines torch lacks (syrk, sytrd, gtsv); the one
loop over classes, in :func:`shifted_solves`, is O(D) LAPACK work per class.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

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


def centre(x: torch.Tensor) -> torch.Tensor:
    """``x`` [N, D] minus its column means, in two passes.

    One pass leaves the rounding error of the computed mean in every row: features that are the same for every
    sample (a dead model) come out as N copies of that error, a rank-1 matrix of norm up to ~3 eps |x|_F which every
    cutoff relative to its own largest eigenvalue keeps. The second pass removes the mean of the first result, so
    such columns become exactly zero or ~eps^2 |x|_F; varying features change by rounding only.
    """
    xc = x - x.mean(dim=0, keepdim=True)
    return xc - xc.mean(dim=0, keepdim=True)


def scale_floor(x: torch.Tensor) -> float:
    """``eps |x|_F`` in ``x``'s dtype: the size of the rounding of the (uncentred) features ``x`` themselves.

    Each entry is stored to eps/2 relative, so a direction of variation smaller than this cannot be told from
    rounding (NumPy's rank tolerance makes the same argument relative to the largest singular value). The norm is
    taken on ``x / max|x|`` so that neither huge nor tiny features overflow or underflow.
    """
    import torch

    amax = float(x.abs().max())
    if amax == 0.0:
        return 0.0
    return torch.finfo(x.dtype).eps * amax * float((x / amax).norm())


def power_of_two_scale(x: torch.Tensor) -> float:
    """The power of two ``s`` with ``max |x| / s`` in [0.5, 1) (1 for all-zero ``x``).

    Dividing by ``s`` only changes exponents, so it is exact, and a scale-free quantity computed on ``x / s`` is the
    one computed on ``x``, to the last bit, wherever the latter neither overflows nor underflows. The estimators that
    raise the features to the fourth power or beyond divide by it: within :func:`~._validate.magnitude_range` the
    squares are safe, those higher powers are not.
    """
    amax = float(x.abs().max())
    return math.ldexp(1.0, math.frexp(amax)[1]) if amax > 0 else 1.0


def default_rcond(shape: tuple[int, ...], dtype: torch.dtype) -> float:
    """Relative eigenvalue cutoff ``max(shape) * eps`` (the rank tolerance of ``numpy.linalg.matrix_rank``)."""
    import torch

    return max(shape) * torch.finfo(dtype).eps


def trace_pinv_gram(cov: torch.Tensor, B: torch.Tensor, *, rcond: float, floor: float = 0.0) -> float:
    """``trace(pinv(cov) @ B @ B.T)`` for a symmetric PSD ``cov`` [D, D] and ``B`` [D, C], via one ``eigh``.

    Equals ``|| Lambda^{-1/2} V^T B ||_F^2`` over the eigenpairs above both ``rcond * max eigenvalue`` and the
    absolute ``floor``; neither the pseudo-inverse nor the [D, D] product with ``B B^T`` is formed.
    """
    evals, proj = eigh_project(cov, B)  # [D], [D, C]
    keep = evals > max(rcond * float(evals.abs().max()), floor)
    return float((proj[keep].square().sum(dim=1) / evals[keep]).sum())


def gram(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """``x^T y`` [D, T] of ``x`` [N, D] and ``y`` [N, T]; the Gram matrix ``x^T x`` [D, D] when ``y`` is None.

    On the CPU the Gram matrix has only its lower triangle filled (BLAS syrk: half the flops of torch's general
    product), which is all :func:`eigh_project` and ``torch.linalg.eigh`` read. Both products go through SciPy's
    BLAS, the library whose LAPACK :func:`eigh_project` calls next: each BLAS build keeps its own spinning worker
    threads, and with the Gram matrix from NumPy's pool LogME at N=2,000, D=768 ran 2x slower on 2 cores.
    """
    import torch

    if x.device.type != "cpu":
        return x.T @ (x if y is None else y)
    from scipy.linalg import get_blas_funcs

    xt = np.asfortranarray(x.numpy().T)  # [D, N]: a free view for the usual C-ordered [N, D] features
    syrk, gemm = get_blas_funcs(("syrk", "gemm"), (xt,))
    return torch.from_numpy(syrk(1.0, xt, lower=1) if y is None else gemm(1.0, xt, y.numpy()))


class Tridiagonal(NamedTuple):
    """``A = Q S Q^T``, S symmetric tridiagonal (diagonal ``d`` [D], off-diagonal ``e`` [D-1]), and ``p = Q^T B``."""

    d: np.ndarray
    e: np.ndarray
    p: np.ndarray


def tridiagonalize(A: torch.Tensor, B: torch.Tensor) -> Tridiagonal:
    """Reduce a symmetric CPU tensor ``A`` [D, D] (lower triangle read) to tridiagonal S and carry ``B`` [D, T] along.

    LAPACK sytrd, then ormqr applies the reflectors of Q^T to the T columns of B only: Q itself is never formed.
    """
    from scipy.linalg import get_lapack_funcs

    a = A.numpy()
    n = a.shape[0]
    sytrd, sytrd_lwork, ormqr = get_lapack_funcs(("sytrd", "sytrd_lwork", "ormqr"), (a,))
    lwork, info = sytrd_lwork(n, lower=1)
    _check_lapack("sytrd_lwork", info)
    c, d, e, tau, info = sytrd(a, lower=1, lwork=int(lwork))
    _check_lapack("sytrd", info)
    p = np.array(B.numpy(), dtype=a.dtype, order="F")  # [D, T]
    if n > 1:
        # Lower storage: Q = H(1) ... H(n-1), whose vectors sit below the subdiagonal exactly as geqrf would store the
        # Q of the trailing (n-1) rows (LAPACK ormtr does the same call): Q^T acts on rows 1.. of B.
        v = c[1:, : n - 1]
        _, work, info = ormqr("L", "T", v, tau, p[1:], lwork=-1)
        _check_lapack("ormqr_lwork", info)
        p[1:], _, info = ormqr("L", "T", v, tau, p[1:], lwork=int(work[0]), overwrite_c=1)
        _check_lapack("ormqr", info)
    return Tridiagonal(d, e, p)


def shifted_solves(tri: Tridiagonal, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|u_t|^2`` and ``p_t . u_t`` [T] for ``u_t = (S + shifts[t] I)^{-1} p_t``: one O(D) LAPACK gtsv per column."""
    from scipy.linalg import get_lapack_funcs

    T = tri.p.shape[1]
    uu, pu = np.empty(T, dtype=tri.d.dtype), np.empty(T, dtype=tri.d.dtype)
    if tri.d.shape[0] == 1:  # gtsv's wrapper refuses a 1 x 1 system
        u = tri.p[0] / (tri.d[0] + shifts)
        return u * u, tri.p[0] * u
    (gtsv,) = get_lapack_funcs(("gtsv",), (tri.d,))
    for t in range(T):
        *_, u, info = gtsv(tri.e, tri.d + shifts[t], tri.e, tri.p[:, t])
        _check_lapack("gtsv", info)
        uu[t], pu[t] = u @ u, tri.p[:, t] @ u
    return uu, pu


def eigh_project(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending eigenvalues ``w`` [D] of a symmetric ``A`` [D, D] (lower triangle read) and ``V^T B`` [D, T].

    On the CPU the eigenvectors V are never formed: with :func:`tridiagonalize` and the small tridiagonal problem
    ``S = Z diag(w) Z^T``, ``V^T B = Z^T (Q^T B)``. This skips the back-transformation ``V = Q Z`` (2 D^3 of a full
    eigh's ~4 D^3 flops), the same steps as LAPACK syevd otherwise. Other devices run one ``torch.linalg.eigh``.
    """
    import torch

    if A.device.type != "cpu":
        w, V = torch.linalg.eigh(A)
        return w, V.T @ B
    from scipy.linalg import eigh_tridiagonal, get_blas_funcs

    tri = tridiagonalize(A, B)
    w, Z = eigh_tridiagonal(tri.d, tri.e, lapack_driver="stevd", check_finite=False)
    (gemm,) = get_blas_funcs(("gemm",), (Z,))
    return torch.from_numpy(w), torch.from_numpy(gemm(1.0, Z, tri.p, trans_a=1))


def _check_lapack(routine: str, info: int) -> None:
    """LAPACK reports a bad argument as ``info < 0``: a bug here, never the caller's data."""
    if info != 0:
        raise RuntimeError(f"LAPACK {routine} failed with info={info}; please report this as an hf_spider bug")


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
