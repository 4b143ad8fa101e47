"""GBC: the Gaussian Bhattacharyya coefficient, the class overlap of per-class Gaussians in feature space.

Pandy et al., "Transferability Estimation using Bhattacharyya Class Separability", CVPR 2022, eq. 2-4:
``GBC = - sum_{c1 != c2} exp(-D_B(c1, c2))`` with the Bhattacharyya distance of two Gaussians. Reference:
TransferGraph ``.../baseline/methods/gbc.py`` (raw features, no PCA; population variances floored at 1e-4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from . import _validate as validate
from ._linalg import class_means

if TYPE_CHECKING:
    import torch

#: Floor of each per-dimension class variance (reference), so that a constant dimension has a finite log.
VAR_FLOOR = 1e-4
#: Upper bound on the elements of one [rows, C, D] block of pairwise terms, to bound memory for large C x D.
BLOCK_ELEMENTS = 1 << 24

GaussianType = Literal["diagonal", "spherical"]


def gbc(
    features: Any,
    labels: Any,
    *,
    gaussian_type: GaussianType = "diagonal",
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """GBC of ``features`` [N, D] for ``labels`` [N]; higher (closer to 0) is better.

    Args:
        gaussian_type: ``"diagonal"`` (per-dimension class variances, the default) or ``"spherical"`` (each class's
            variance vector replaced by its mean; the log terms then stay scalar, as in the reference).

    Raises:
        EstimatorInputError: malformed features or labels.

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 2
        >>> f = np.random.default_rng(0).normal(size=(200, 4))
        >>> gbc(f + 5 * y[:, None], y) > gbc(f, y)
        True
    """
    import torch

    validate.choice(gaussian_type, ("diagonal", "spherical"), "gaussian_type")
    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    mu = class_means(F, y, C)  # [C, D]
    var = class_means((F - mu[y]).square(), y, C).clamp_min(VAR_FLOOR)  # population variance per class, [C, D]
    if gaussian_type == "spherical":
        var = var.mean(dim=1, keepdim=True)  # [C, 1]
    log_var = var.log()
    total = torch.zeros((), dtype=F.dtype, device=F.device)
    rows = max(1, BLOCK_ELEMENTS // (C * var.shape[1]))
    for start in range(0, C, rows):  # blocks of c1, each against every c2 at once
        stop = min(C, start + rows)
        s_bar = (var[start:stop, None, :] + var[None, :, :]) / 2  # [b, C, D']
        quad = ((mu[start:stop, None, :] - mu[None, :, :]).square() / s_bar).sum(dim=2) / 8  # [b, C]
        logs = s_bar.log().sum(dim=2) - (log_var[start:stop, None, :] + log_var[None, :, :]).sum(dim=2) / 2
        bc = torch.exp(-(quad + logs / 2))  # Bhattacharyya coefficients, [b, C]
        idx = torch.arange(start, stop, device=F.device)
        bc[idx - start, idx] = 0  # c1 == c2 is not a pair
        total = total + bc.sum()
    return -float(total)
