"""A straightforward per-class NumPy LogME: the baseline the torch implementation is timed against.

Written from the reference algorithm (thuml/LogME ``LogME.py``, fixed-point path, without numba): the truncated SVD
from ``svd(F^T F)`` with the left singular vectors formed explicitly, then one Python loop over the classes, each
running its own alpha/beta fixed point. Same result as :func:`hf_spider.estimators.logme` when N > D.
"""

from __future__ import annotations

import numpy as np


def logme_numpy(f: np.ndarray, y: np.ndarray) -> float:
    """Mean over classes of the maximum log evidence per sample (float64, classification, N > D)."""
    f = f.astype(np.float64)
    N, D = f.shape
    u, s, vh = np.linalg.svd(f.T @ f)
    s = np.sqrt(s)
    k = int((s > 1e-10).sum())
    u = (f @ vh.T)[:, :k] / s[:k]
    sigma = (s[:k] ** 2).reshape(-1, 1)
    evidences = []
    for c in range(int(y.max()) + 1):
        t = (y == c).astype(np.float64).reshape(-1, 1)
        x = u.T @ t
        x2 = x**2
        res_x2 = (t**2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            lam = alpha / beta
            gamma = (sigma / (sigma + lam)).sum()
            m2 = (sigma * x2 / ((lam + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / lam) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (N - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - lam) / lam <= 1e-3:
                break
        evidence = (
            D / 2.0 * np.log(alpha)
            + N / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - N / 2.0 * np.log(2 * np.pi)
        )
        evidences.append(evidence / N)
    return float(np.mean(evidences))
