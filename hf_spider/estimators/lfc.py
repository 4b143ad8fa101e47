"""LFC: label-feature correlation, the alignment of the feature kernel with the label kernel.

Deshpande et al., "A Linearized Framework and a New Benchmark for Model Selection for Fine-Tuning", 2021, Sec. 3.2:
``LFC = <K~, L~>_F / (|K~|_F |L~|_F)`` with ``K = f f^T``, ``L_ij = +1`` (same label) or ``-1``, each matrix minus
its global mean. References: zhangyikaii/Model-Spider ``mptms/LFC.py`` (linear kernel) and TransferGraph
``.../baseline/methods/lfc.py`` (dot / l2 / cos / corr kernels).

Shortcut (exact): for the inner-product kernels every term has a closed form in ``F^T F`` [D, D] (or ``F F^T`` when
N < D) and ``F^T Y`` [D, C]; the [N, N] matrices are never built. Only the ``"l2"`` kernel forms the distance
matrix. Model-Spider builds L in float32; we use the working dtype (a ~1e-7 relative difference).

LFC is a correlation with the centred feature kernel, undefined (0/0) when that kernel is constant: every row the
same (a dead model, all-zero features; the references return NaN), or rows that differ only in ways the kernel
cannot see (``cos``: positive multiples of one row). Both raise :class:`~hf_spider.errors.EstimatorInputError`, as
does a centred kernel within rounding of zero, ``|K - mean K|_F^2 <= KERNEL_RTOL |K|_F^2``: below that the closed
form is a difference of two rounded sums and its value is noise (float64 features offset by 1e8 x their spread
scored 6e-9 with the linear kernel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ..errors import EstimatorInputError
from . import _validate as validate
from ._linalg import class_counts, class_sums, one_hot, power_of_two_scale

if TYPE_CHECKING:
    import torch

Kernel = Literal["linear", "cos", "corr", "l2"]

#: Centred-kernel share (squared norms, in units of the dtype's eps) below which the kernel counts as constant:
#: ``|K|_F^2`` and ``sum(K)^2 / N^2`` each carry a rounding error of a few tens of eps relative (sums of N^2 terms).
KERNEL_RTOL_EPS = 32


def lfc(
    features: Any,
    labels: Any,
    *,
    kernel: Kernel = "linear",
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """LFC of ``features`` [N, D] for ``labels`` [N]; higher is better.

    Args:
        kernel: ``"linear"`` (``f f^T``; Model-Spider, TransferGraph "dot"), ``"cos"`` (cosine similarity of
            samples), ``"corr"`` (Pearson correlation of samples) or ``"l2"`` (minus the Euclidean distance).

    Raises:
        EstimatorInputError: malformed features or labels, a zero row with ``kernel="cos"``/``"corr"``, or features
            whose kernel is constant (every row the same: LFC is 0/0).

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 2
        >>> f = np.random.default_rng(0).normal(size=(200, 4))
        >>> lfc(f + 5 * y[:, None], y) > lfc(f, y)
        True
    """
    import torch

    validate.choice(kernel, ("linear", "cos", "corr", "l2"), "kernel")
    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    # LFC is scale-free, and |F^T F|_F^2 sums fourth powers of the features: beyond ~1e75 or below ~1e-85 (float32:
    # ~1e10, ~1e-15) they over- or underflowed and the kernel was called constant.
    F = F / power_of_two_scale(F)
    N = F.shape[0]
    if bool((F[:1] == F).all()):
        raise EstimatorInputError(
            "features are the same for every sample (a constant kernel), so LFC is undefined (0/0); "
            "check the feature extraction: a model that maps every input to one embedding carries no signal"
        )
    n_c = class_counts(y, C, F.dtype)
    # Label kernel L = 2 Y Y^T - 1: sum(L) and |L|_F^2 = N^2 in closed form.
    L_sum = 2 * n_c.square().sum() - N * N
    L_norm2 = N * N - L_sum**2 / (N * N)  # |L - mean(L)|_F^2

    if kernel == "l2":
        K = -torch.cdist(F, F, compute_mode="donot_use_mm_for_euclid_dist")  # exact, not |a|^2 - 2ab + |b|^2
        KL = 2 * (one_hot(y, C, F.dtype).T @ K @ one_hot(y, C, F.dtype)).trace() - K.sum()  # <K, L>
        K_sum, K_norm2 = K.sum(), K.square().sum()
    else:
        if kernel == "corr":
            F = F - F.mean(dim=1, keepdim=True)
        if kernel in ("cos", "corr"):
            norms = F.norm(dim=1, keepdim=True)
            if bool((norms == 0).any()):
                raise EstimatorInputError(
                    f"features has an all-zero (or constant, for kernel={kernel!r}) row, whose similarity is "
                    "undefined; drop it or use kernel='linear'"
                )
            F = F / norms
        G = F.T @ F if F.shape[1] <= N else F @ F.T  # |K|_F = |F^T F|_F = |F F^T|_F
        s = F.sum(dim=0)
        K_sum = s @ s  # 1^T F F^T 1
        KL = 2 * class_sums(F, y, C).square().sum() - K_sum  # 2 |F^T Y|_F^2 - sum(K)
        K_norm2 = G.square().sum()
    num = KL - K_sum * L_sum / (N * N)  # <K - mean K, L - mean L>
    K_centred2 = K_norm2 - K_sum**2 / (N * N)  # |K - mean K|_F^2
    if not bool(K_centred2 > KERNEL_RTOL_EPS * torch.finfo(F.dtype).eps * K_norm2):
        raise EstimatorInputError(
            f"the {kernel} kernel of features is constant up to rounding ({F.dtype}), so LFC is undefined (0/0); "
            "the features barely vary across samples (or only in ways this kernel ignores); check the features, "
            "or pass dtype=torch.float64 if they are float32"
        )
    return float(num / (K_centred2.sqrt() * L_norm2.sqrt()))
