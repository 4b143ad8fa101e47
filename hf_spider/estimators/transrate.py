"""TransRate: the coding-rate gain of the features with respect to the labels.

Huang et al., "Frustratingly Easy Transferability Estimation", ICML 2022, eq. 5-8: ``TrR = R(Z) - 1/C sum_c R(Z_c)``
with the coding rate ``R(Z) = 1/2 logdet(I + Z^T Z / (n eps))``. Reference: TransferGraph
``.../baseline/methods/transrate.py`` (features centred once, globally; classes weighted 1/C; eps = 1e-4).

Shortcut (exact): ``logdet(I_D + Z^T Z a) = logdet(I_n + Z Z^T a)`` (Sylvester), so each rate uses the smaller
Gram matrix, and the classes are batched: their rows are zero-padded to a common length, which leaves every
``Z_c^T Z_c`` unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _validate as validate
from ._linalg import class_counts, default_rcond

if TYPE_CHECKING:
    import torch

#: Distortion eps of the coding rate (reference default).
EPS = 1e-4
#: Upper bound on the elements of one zero-padded [classes, rows, D] batch.
BLOCK_ELEMENTS = 1 << 24


def transrate(
    features: Any,
    labels: Any,
    *,
    eps: float = EPS,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """TransRate of ``features`` [N, D] for ``labels`` [N]; higher is better.

    Classes are not re-centred (as in the paper's code), so a class-mean offset raises both ``R(Z)`` and ``R(Z_c)``:
    separation shows only with three or more classes whose means span several directions.

    Args:
        eps: the distortion of the coding rate.

    Raises:
        EstimatorInputError: malformed features or labels.

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 4
        >>> f = np.random.default_rng(0).normal(size=(200, 8))
        >>> transrate(f + 5 * np.eye(8)[y], y) > transrate(f, y)  # class means apart in 4 directions
        True
    """
    import torch

    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    Z = F - F.mean(dim=0, keepdim=True)
    whole = _coding_rates(Z[None], torch.tensor([Z.shape[0]], device=F.device), eps)[0]

    counts = class_counts(y, C, torch.long)
    order = torch.argsort(y, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    by_size = torch.argsort(counts).tolist()  # similar sizes share a batch, so little padding
    total = torch.zeros((), dtype=F.dtype, device=F.device)
    i = 0
    while i < C:
        j = i + 1
        while j < C and (j + 1 - i) * int(counts[by_size[j]]) * Z.shape[1] <= BLOCK_ELEMENTS:
            j += 1
        cls = torch.tensor(by_size[i:j], device=F.device)
        n_max = int(counts[cls].max())
        pos = torch.arange(n_max, device=F.device)
        valid = pos[None, :] < counts[cls][:, None]  # [b, n_max]
        rows = order[(starts[cls][:, None] + pos[None, :]).clamp_max(Z.shape[0] - 1)]
        batch = Z[rows] * valid[..., None]  # zero-padded classes, [b, n_max, D]
        total = total + _coding_rates(batch, counts[cls], eps).sum()
        i = j
    return float(whole - total / C)


def _coding_rates(M: torch.Tensor, n: torch.Tensor, eps: float) -> torch.Tensor:
    """``[B]`` rates ``1/2 logdet(I + M_b^T M_b / (n_b eps))`` of a batch ``M`` [B, rows, D], smaller Gram each.

    One Cholesky factor per rate; where it fails, the rate comes from the Gram matrix's eigenvalues instead, those
    below the rank cutoff (:func:`~._linalg.default_rcond`) counted as zero. ``I + G / (n eps)`` is positive definite,
    but when G is singular (D >= N, or a class with fewer samples than dimensions) round-off puts its null
    eigenvalues near ``-eps |G|``, which outweighs the identity once the features are large: the Cholesky factor
    then failed with a bare LinAlgError, in float32 already at features of ~40 (N=100, D=200). Where the factor
    succeeds those eigenvalues still add ``log(1 + noise)`` terms, which matter for large features (N=30, D=50: up to
    4% in float32 from ~1e4, 2% in float64 at ~1e10); the Cholesky path stays first all the same, since the
    eigenvalue path everywhere would move every value by round-off.
    """
    import torch

    scale = (1.0 / (n.to(M.dtype) * eps))[:, None, None]
    G = M @ M.transpose(1, 2) if M.shape[1] <= M.shape[2] else M.transpose(1, 2) @ M
    A = G * scale + torch.eye(G.shape[-1], dtype=M.dtype, device=M.device)
    L, info = torch.linalg.cholesky_ex(A)
    rates = L.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)  # 1/2 logdet = sum log diag L
    failed = info != 0
    if bool(failed.any()):
        evals = torch.linalg.eigvalsh(G[failed])  # [b, rows]
        keep = evals > default_rcond(tuple(G.shape[-2:]), G.dtype) * evals.amax(dim=-1, keepdim=True)
        terms = torch.log1p(evals.clamp_min(0) * scale[failed][..., 0])
        rates[failed] = torch.where(keep, terms, torch.zeros_like(terms)).sum(dim=-1) / 2
    return rates
