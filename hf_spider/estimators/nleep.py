"""N-LEEP: LEEP with the source classifier replaced by a Gaussian mixture fitted on the (PCA-reduced) features.

Li et al., "Ranking Neural Checkpoints", CVPR 2021, Sec. 3.3 (PCA keeping 80% of the variance, then a GMM whose
posteriors over components play the source-class probabilities of LEEP). Reference: zhangyikaii/Model-Spider
``mptms/LEEP.py :: NLEEP`` (K = max(min(C, N/5), N/10) components, scikit-learn ``GaussianMixture`` defaults, and
its LEEP with 1e-10 guards).

The GMM is our own torch EM with scikit-learn's defaults (full covariances, ``reg_covar`` 1e-6, k-means++ then
Lloyd initialisation, one init, at most 100 EM rounds, stop when the mean log-likelihood changes by < 1e-3), seeded
by ``seed`` through a torch generator, so equal inputs and seed give equal scores on one device. The value itself
is not reproducible across GMM implementations: scikit-learn's own spread over seeds is 2% to 57% on the published
test vectors, so compare rankings, not digits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import EstimatorInputError
from . import _validate as validate
from ._linalg import leep_score

if TYPE_CHECKING:
    import torch

#: Share of variance the PCA keeps (paper).
PCA_VARIANCE = 0.8
#: Covariance regulariser, EM cap and stop tolerance (scikit-learn ``GaussianMixture`` defaults).
REG_COVAR = 1e-6
MAX_ITER = 100
REL_TOL = 1e-3
#: Lloyd iteration cap and centre-shift tolerance (scikit-learn ``KMeans`` defaults; tol relative to the variance).
KMEANS_MAX_ITER = 300
KMEANS_TOL = 1e-4
#: Guards of Model-Spider's LEEP on p(z) and on each prediction.
LEEP_EPS = 1e-10
#: Upper bound on the elements of one [components, N, p] block.
BLOCK_ELEMENTS = 1 << 24


def nleep(
    features: Any,
    labels: Any,
    *,
    n_components: int | None = None,
    seed: int = 0,
    init_assignment: Any | None = None,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """N-LEEP of ``features`` [N, D] for ``labels`` [N]; higher is better.

    Args:
        n_components: GMM components; default ``max(min(C, N // 5), N // 10)`` (the reference's rule), at least 1:
            the rule gives 0 below 5 samples, where we use the single component it gives for 5 to 9 samples.
        seed: seeds the k-means++ initialisation; same seed, inputs and device give the same value.
        init_assignment: ``[N]`` component ids 0..K-1 to start EM from instead of the seeded k-means (to replay
            another implementation's initialisation, e.g. scikit-learn's ``KMeans`` labels).
        dtype: ``torch.float64`` (default) or ``torch.float32`` for the PCA and the LEEP step; the mixture itself is
            always fitted in float64.
        device: where to compute.

    Raises:
        EstimatorInputError: malformed features or labels, or ``n_components`` outside 1..N.

    Example:
        >>> import numpy as np
        >>> y = np.arange(200) % 2
        >>> f = np.random.default_rng(0).normal(size=(200, 4))
        >>> nleep(f + 5 * y[:, None], y) > nleep(f, y)
        True
    """
    import torch

    F, y, C = validate.features_and_labels(features, labels, dtype, device)
    N = F.shape[0]
    K = max(min(C, N // 5), N // 10, 1) if n_components is None else n_components
    if not 1 <= K <= N:
        raise EstimatorInputError(f"n_components={K} must be between 1 and the {N} samples; pass a value in 1..{N}")
    X = _pca(F, PCA_VARIANCE)
    if init_assignment is None:
        start = _kmeans(X, K, torch.Generator().manual_seed(seed))
    else:
        start = validate.source_labels(init_assignment, N, device=F.device, name="init_assignment")
        if int(start.max()) >= K:
            raise EstimatorInputError(f"init_assignment holds ids >= n_components={K}; pass ids 0..{K - 1}")
    # The mixture is fitted in float64 whatever ``dtype``: scikit-learn's reg_covar (1e-6) is below float32 round-off,
    # so float32 covariances of components with fewer samples than PCA dimensions are numerically singular.
    theta = _gmm_posteriors(X.double(), start, K)
    return leep_score(theta.to(F.dtype), y, C, eps=LEEP_EPS)


def _pca(F: torch.Tensor, share: float) -> torch.Tensor:
    """``[N, k]`` projection on the fewest principal axes whose variance ratio exceeds ``share`` (sklearn's rule)."""
    import torch

    Xc = F - F.mean(dim=0, keepdim=True)
    if Xc.shape[0] >= Xc.shape[1]:
        evals, vecs = torch.linalg.eigh(Xc.T @ Xc)  # ascending, [D], [D, D]
        evals, vecs = evals.flip(0).clamp_min(0), vecs.flip(1)
        scores = Xc @ vecs
    else:  # N < D: axes from the [N, N] Gram matrix; the scores are U s
        evals, U = torch.linalg.eigh(Xc @ Xc.T)
        evals, U = evals.flip(0).clamp_min(0), U.flip(1)
        scores = U * evals.sqrt()
    ratio = torch.cumsum(evals, 0) / evals.sum()
    k = int(torch.searchsorted(ratio, torch.tensor([share], dtype=ratio.dtype, device=ratio.device), right=True)) + 1
    return scores[:, : min(k, scores.shape[1])]


def _kmeans(X: torch.Tensor, K: int, gen: torch.Generator) -> torch.Tensor:
    """``[N]`` cluster ids: greedy k-means++ seeding (2 + log K trials per centre) then Lloyd's iterations."""
    import torch

    N = X.shape[0]
    x2 = X.square().sum(dim=1)

    def sq_dist(centres: torch.Tensor) -> torch.Tensor:
        return (x2[:, None] - 2 * X @ centres.T + centres.square().sum(dim=1)[None, :]).clamp_min(0)  # [N, k]

    trials = 2 + int(math.log(K))
    first = int(torch.randint(N, (1,), generator=gen))
    centres = X[first : first + 1]
    closest = sq_dist(centres)[:, 0]
    for _ in range(1, K):
        u = torch.rand(trials, generator=gen, dtype=torch.float64).to(X.device, X.dtype) * closest.sum()
        cand = torch.searchsorted(torch.cumsum(closest, 0), u).clamp_max(N - 1)
        pot = torch.minimum(closest[:, None], sq_dist(X[cand]))  # [N, trials]
        best = int(pot.sum(dim=0).argmin())
        closest = pot[:, best]
        centres = torch.cat([centres, X[cand[best]][None]])
    tol = KMEANS_TOL * float(X.var(dim=0).mean())
    for _ in range(KMEANS_MAX_ITER):
        assign = sq_dist(centres).argmin(dim=1)
        counts = torch.bincount(assign, minlength=K).to(X.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assign, X)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)  # keep empty centres
        shift = float((new - centres).square().sum())
        centres = new
        if shift <= tol:
            break
    return sq_dist(centres).argmin(dim=1)


def _m_step(X: torch.Tensor, resp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights [K], means [K, p] and Cholesky factors [K, p, p] of the covariances, from responsibilities [N, K]."""
    import torch

    N, p = X.shape
    K = resp.shape[1]
    nk = resp.sum(dim=0) + 10 * torch.finfo(X.dtype).eps  # sklearn's guard against empty components
    means = resp.T @ X / nk[:, None]
    eye = torch.eye(p, dtype=X.dtype, device=X.device)
    chols = []
    step = max(1, BLOCK_ELEMENTS // (N * p))
    for k0 in range(0, K, step):  # blocks of components: [k, N, p] differences
        diff = X[None, :, :] - means[k0 : k0 + step, None, :]
        cov = (resp.T[k0 : k0 + step, :, None] * diff).transpose(1, 2) @ diff / nk[k0 : k0 + step, None, None]
        L, info = torch.linalg.cholesky_ex(cov + REG_COVAR * eye)
        if bool((info != 0).any()):
            raise EstimatorInputError(
                f"N-LEEP's Gaussian mixture has a component with a singular covariance ({p} PCA dims, {K} components, "
                f"{X.dtype}); pass a smaller n_components, or features nearer unit scale (the covariance regulariser, "
                f"{REG_COVAR:g}, is absolute, as in scikit-learn, so it steadies nothing for features of large scale)"
            )
        chols.append(L)
    return nk / N, means, torch.cat(chols)


def _log_joint(X: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, chols: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` log (weight_k N(x_n | mean_k, cov_k))."""
    import torch

    N, p = X.shape
    K = means.shape[0]
    out = []
    step = max(1, BLOCK_ELEMENTS // (N * p))
    for k0 in range(0, K, step):
        diff = (X[None, :, :] - means[k0 : k0 + step, None, :]).transpose(1, 2)  # [k, p, N]
        z = torch.linalg.solve_triangular(chols[k0 : k0 + step], diff, upper=False)
        log_det = chols[k0 : k0 + step].diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)  # [k]
        out.append((-0.5 * (p * math.log(2 * math.pi) + z.square().sum(dim=1)) - log_det[:, None]).T)
    return torch.cat(out, dim=1) + weights.log()[None, :]


def _gmm_posteriors(X: torch.Tensor, start: torch.Tensor, K: int) -> torch.Tensor:
    """``[N, K]`` posteriors of a full-covariance GMM fitted by EM from the hard assignment ``start`` [N]."""
    import torch

    resp = torch.nn.functional.one_hot(start, K).to(X.dtype)
    weights, means, chols = _m_step(X, resp)
    lower_bound = -math.inf
    for _ in range(MAX_ITER):
        log_joint = _log_joint(X, weights, means, chols)
        log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)
        weights, means, chols = _m_step(X, torch.exp(log_joint - log_norm))
        prev, lower_bound = lower_bound, float(log_norm.mean())
        if abs(lower_bound - prev) < REL_TOL:
            break
    log_joint = _log_joint(X, weights, means, chols)
    return torch.softmax(log_joint, dim=1)
