"""LEEP: the log expected empirical prediction of the source classifier's outputs on the target data.

Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned Representations", ICML 2020, eq. 1-2.
Reference: thuml/LogME ``LEEP.py`` (commit 56551ca), which has no epsilons; neither do we.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _validate as validate
from ._linalg import leep_score

if TYPE_CHECKING:
    import torch


def leep(
    source_probs: Any,
    labels: Any,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """LEEP of the source model's softmax outputs ``source_probs`` [N, K] for target ``labels`` [N]; higher is better.

    Args:
        source_probs: ``[N, K]`` the source classifier's probabilities on the target samples (rows sum to one).
        labels: ``[N]`` target class ids 0..C-1.
        dtype: ``torch.float64`` (default) or ``torch.float32``.
        device: where to compute.

    Returns:
        ``1/N sum_i log sum_z theta_iz P(y_i | z)`` (a log-likelihood, at most 0).

    Raises:
        EstimatorInputError: probabilities that are negative or do not sum to one, malformed labels.

    Example:
        >>> import numpy as np
        >>> y = np.arange(6) % 2
        >>> round(leep(np.eye(2)[y], y), 6)  # a source model that already predicts the target classes
        0.0
    """
    dtype, dev = validate.resolve(dtype, device)
    theta = validate.probabilities(source_probs, dtype=dtype, device=dev)
    y, C = validate.labels(labels, theta.shape[0], device=dev, rows_of="source_probs")
    return leep_score(theta, y, C)
