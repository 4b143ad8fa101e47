"""PACTran: PAC-Bayesian transferability, a bound on the generalisation of a linear head on the features.

Ding et al., "PACTran: PAC-Bayesian Metrics for Estimating the Transferability of Pretrained Models to
Classification Tasks", ECCV 2022. ``method="gauss"`` (the default, Sec. 4.3): a softmax-regression head with a
Gaussian prior, minimised, plus the flatness term of the diagonal curvature. Reference: TransferGraph
``.../baseline/methods/pactran.py`` ("PACTran-L-S"). ``method="dirichlet"`` / ``"gamma"`` (Sec. 4.1-4.2) take the
source model's probabilities instead of features; reference: zhangyikaii/Model-Spider ``mptms/PACTran.py``.
All three return the raw bound, so *lower* is better (Model-Spider reports the negation).

The Gauss head is fitted as the reference does: SciPy's L-BFGS-B, at most 100 iterations from
``0.03 x N(0, 1)`` drawn from the legacy NumPy stream of ``seed``, with loss and gradient computed in torch on the
requested device. The truncation matters: the exact minimiser of this convex objective differs from the reference's
value by up to 5e-5 relative on the published vectors, more than the spread across seeds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from . import _validate as validate
from ._linalg import class_counts, one_hot

if TYPE_CHECKING:
    import torch

Method = Literal["gauss", "dirichlet", "gamma"]

#: Scale of the random start of W (reference).
INIT_SCALE = 0.03
#: L-BFGS-B iteration cap and tolerance (reference). The cap truncates the optimisation, and the bound depends on it.
MAX_ITER = 100
TOL = 1e-6
#: Rounds of the variational updates of the Dirichlet / Gamma bounds (reference: exactly 10).
VARIATIONAL_ROUNDS = 10
#: Guard inside logs and on the prior (reference).
EPS = 1e-10


def pactran(
    features: Any,
    labels: Any,
    *,
    method: Method = "gauss",
    lda_factor: float = 1.0,
    s2: float = 100.0,
    alpha: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """PACTran bound of ``features`` [N, D] (or source probabilities [N, K]) for ``labels`` [N]; lower is better.

    Args:
        features: ``[N, D]`` features for ``"gauss"``; for ``"dirichlet"`` / ``"gamma"`` the source model's
            probabilities ``[N, K]`` (rows sum to one).
        labels: ``[N]`` class ids 0..C-1.
        method: ``"gauss"`` (default), ``"dirichlet"`` or ``"gamma"``.
        lda_factor: L of the Gaussian prior's variance ``L N`` (paper pairs: (0.1, 10), (1, 100), (10, 1000)).
        s2: S of the posterior variance term (Gauss).
        alpha: the Dirichlet / Gamma prior's concentration.
        seed: seed of the random start of the Gauss head (the result depends on it only through round-off).
        dtype: ``torch.float64`` (default) or ``torch.float32``.
        device: where to compute.

    Raises:
        EstimatorInputError: malformed inputs, or non-probabilities for ``"dirichlet"`` / ``"gamma"``.

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 2
        >>> f = np.random.default_rng(0).normal(size=(200, 4))
        >>> pactran(f + 5 * y[:, None], y) < pactran(f, y)
        True
    """
    dtype, dev = validate.resolve(dtype, device)
    validate.choice(method, ("gauss", "dirichlet", "gamma"), "method")
    if method == "gauss":
        F = validate.features(features, dtype=dtype, device=dev)
        y, C = validate.labels(labels, F.shape[0], device=dev)
        return _gauss(F, y, C, lda_factor=lda_factor, s2=s2, seed=seed)
    theta = validate.probabilities(
        features,
        validate.as_tensor(features, "features").shape[0],
        dtype=dtype,
        device=dev,
        name="features (source probabilities)",
    )
    y, C = validate.labels(labels, theta.shape[0], device=dev)
    return _variational(theta, y, C, alpha=alpha, gamma_prior=method == "gamma")


def _gauss(F: torch.Tensor, y: torch.Tensor, C: int, *, lda_factor: float, s2: float, seed: int) -> float:
    """PAC-Gauss: ``loss* + 1/2 (kd / ldas2) (S / D) log(h ldas2 / kd + eps)`` with h the summed diagonal curvature."""
    import numpy as np
    import scipy.optimize
    import torch

    N, D = F.shape
    F = F - F.mean(dim=0, keepdim=True)
    ldas2 = lda_factor * N
    kd = D * C

    def unpack(theta: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.from_numpy(theta.reshape(D + 1, C)).to(device=F.device, dtype=F.dtype)
        return t[:D], t[D]  # W [D, C], b [C]

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = unpack(theta)
        logits = F @ W + b
        loss = torch.nn.functional.cross_entropy(logits, y) + W.square().sum() / (2 * ldas2)
        g = torch.softmax(logits, dim=1)
        g[torch.arange(N, device=F.device), y] -= 1
        g /= N  # d loss / d logits, [N, C]
        grad = torch.cat([F.T @ g + W / ldas2, g.sum(dim=0, keepdim=True)])
        return float(loss), grad.detach().to("cpu", torch.float64).numpy().ravel()

    # Same start and optimiser as the reference: the legacy NumPy stream of `seed`, SciPy L-BFGS-B, 100 iterations.
    W0 = np.random.RandomState(seed).normal(size=(D, C)) * INIT_SCALE
    theta0 = np.concatenate([W0, np.zeros((1, C))]).ravel()
    res = scipy.optimize.minimize(
        loss_and_grad, theta0, method="L-BFGS-B", jac=True, options={"maxiter": MAX_ITER}, tol=TOL
    )
    loss_opt = loss_and_grad(res.x)[0]
    W, b = unpack(res.x)
    p = torch.softmax(F @ W + b, dim=1)
    pp = p * (1 - p)  # [N, C]
    h = float((F.square().T @ pp).sum()) + kd / ldas2 + float(pp.sum())  # W block with its prior, then the b block
    sigma2_inv = h * ldas2 / kd + EPS
    return loss_opt + 0.5 * (kd / ldas2) * (s2 / D) * math.log(sigma2_inv)


def _variational(theta: torch.Tensor, y: torch.Tensor, C: int, *, alpha: float, gamma_prior: bool) -> float:
    """PAC-Dirichlet / PAC-Gamma (beta = 1) bounds after a fixed number of mean-field rounds (reference values)."""
    import torch

    N = theta.shape[0]
    Y = one_hot(y, C, theta.dtype)  # [N, C]
    a0 = alpha * class_counts(y, C, theta.dtype)[:, None] / N + EPS  # [C, 1]
    log_s = torch.log(theta + EPS)  # [N, K]
    q = theta
    aw = a0 + Y.T @ q  # [C, K]
    for _ in range(VARIATIONAL_ROUNDS):
        aw = a0 + Y.T @ q
        logits = log_s + Y @ torch.digamma(aw)
        if not gamma_prior:
            logits = logits - torch.digamma(aw.sum(dim=0, keepdim=True))
        q = torch.softmax(logits, dim=1)
    kl_q = (torch.special.xlogy(q, q) - q * log_s).sum()  # sum_i sum_z q (log q - log s)
    if not gamma_prior:
        lnB0 = torch.lgamma(a0.sum()) - torch.lgamma(a0).sum()
        lnBz = torch.lgamma(aw.sum(dim=0)) - torch.lgamma(aw).sum(dim=0)  # [K]
        K = theta.shape[1]
        return -float(K * lnB0 - lnBz.sum() - kl_q) / (N * C)
    lw = (theta * aw.sum(dim=0)[None, :]).sum(dim=1)  # [N]
    grid = (torch.lgamma(a0) - torch.lgamma(aw)).sum()  # a0 broadcast over the K columns
    return 1 + float(grid + kl_q + (torch.log(lw) - 1).sum()) / (N * C)
