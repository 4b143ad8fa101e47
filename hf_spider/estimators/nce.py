"""NCE: the negative conditional entropy of the target labels given the source model's hard predictions.

Tran et al., "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019, eq. 2 and Sec. 4.
Reference: thuml/LogME ``NCE.py`` (commit 56551ca). The reference adds 1e-20 to ``P(y | z)`` before the log; we use
``xlogy`` instead (0 log 0 = 0), which differs by at most ~1e-20.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _validate as validate
from ._linalg import conditional_entropy

if TYPE_CHECKING:
    import torch


def nce(
    source: Any,
    labels: Any,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """``-H(Y | Z)`` of target ``labels`` given source pseudo-labels z; higher (closer to 0) is better.

    Args:
        source: either ``[N]`` hard source labels z (non-negative ints; source classes may be missing) or
            ``[N, K]`` source probabilities, whose row-wise argmax is taken (the Model-Spider convention).
        labels: ``[N]`` target class ids 0..C-1.
        dtype: ``torch.float64`` (default) or ``torch.float32``.
        device: where to compute.

    Returns:
        The negative conditional entropy in nats (at most 0).

    Raises:
        EstimatorInputError: malformed source labels / probabilities or target labels.

    Example:
        >>> nce([0, 0, 1, 1], [0, 0, 1, 1]) == 0.0  # the source labels determine the target labels
        True
    """
    import torch

    dtype, dev = validate.resolve(dtype, device)
    raw = validate.as_tensor(source, "source")
    n = raw.shape[0] if raw.ndim else 0
    if raw.ndim == 2:
        z = validate.probabilities(raw, n, dtype=dtype, device=dev, name="source").argmax(dim=1)
    else:
        z = validate.source_labels(raw, n, device=dev, name="source")
    y, C = validate.labels(labels, n, device=dev, rows_of="source")
    K = int(z.max()) + 1
    joint = (
        torch.zeros(K * C, dtype=dtype, device=dev).index_add_(0, z * C + y, torch.ones(n, dtype=dtype, device=dev)) / n
    )  # P(z, y) flattened [K * C]
    return -float(conditional_entropy(joint.reshape(K, C)))
