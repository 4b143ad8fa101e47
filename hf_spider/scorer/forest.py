"""A regression forest kept as tensors: the scorer's estimate of a model that has no fine-tuning record.

What a model's records say about its quality can be learned from what the Hub says about it (size, family,
pre-training scale, ImageNet facts, head, language; the head block of its PTM token), but the relation is full of
interactions: ImageNet top-1 means little for a BEiT fine-tuned with a ViT recipe, size little for a model that reads
another language. Extremely randomised trees (Geurts, Ernst and Wehenkel, "Extremely randomized trees", Machine
Learning 2006) fit them on a few hundred models without tuning, and measured best among ridge, an MLP, k-nearest
neighbours and gradient boosting on the cold-start benchmark. scikit-learn fits them; the fitted trees are stored as
five ``[trees, nodes]`` arrays, so they travel in the scorer's ``model.safetensors`` and are evaluated in torch, all
trees and candidates at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

#: Trees of the forest: more average out the randomised splits; beyond ~100 the cold-start ranking did not change.
TREES = 100
#: Smallest leaf: with a few hundred training models, a leaf of 3 keeps single outliers from becoming predictions.
MIN_LEAF = 3
#: Share of the features each split may choose from (sklearn's ``max_features``).
MAX_FEATURES = 0.5
_LEAF = -1


class ForestTensors(NamedTuple):
    """The five node arrays of :class:`ForestArrays` as tensors."""

    feature: torch.Tensor
    threshold: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    value: torch.Tensor


@dataclass(frozen=True)
class ForestArrays:
    """Fitted trees as padded arrays (``feature == -1`` marks a leaf; padding nodes are leaves of value 0)."""

    feature: np.ndarray  # [T, N] int64
    threshold: np.ndarray  # [T, N] float32
    left: np.ndarray  # [T, N] int64
    right: np.ndarray  # [T, N] int64
    value: np.ndarray  # [T, N] float32

    def tensors(self) -> ForestTensors:
        """The five arrays as tensors, in :func:`predict_forest`'s argument order."""
        arrays = (self.feature, self.threshold, self.left, self.right, self.value)
        return ForestTensors(*(torch.from_numpy(a) for a in arrays))


def fit_forest(x: np.ndarray, y: np.ndarray, *, seed: int, trees: int = TREES) -> ForestArrays:
    """Fit extremely randomised trees of ``y [M]`` on ``x [M, F]`` (deterministic for a seed)."""
    from sklearn.ensemble import ExtraTreesRegressor

    model = ExtraTreesRegressor(
        n_estimators=trees, min_samples_leaf=MIN_LEAF, max_features=MAX_FEATURES, random_state=seed, n_jobs=1
    ).fit(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64))
    fitted = [estimator.tree_ for estimator in model.estimators_]
    width = max(t.node_count for t in fitted)
    arrays = ForestArrays(
        feature=np.full((trees, width), _LEAF, dtype=np.int64),
        threshold=np.zeros((trees, width), dtype=np.float32),
        left=np.zeros((trees, width), dtype=np.int64),
        right=np.zeros((trees, width), dtype=np.int64),
        value=np.zeros((trees, width), dtype=np.float32),
    )
    for index, tree in enumerate(fitted):
        n = tree.node_count
        leaf = tree.children_left[:n] == _LEAF
        arrays.feature[index, :n] = np.where(leaf, _LEAF, tree.feature[:n])
        arrays.threshold[index, :n] = tree.threshold[:n]
        arrays.left[index, :n] = np.where(leaf, np.arange(n), tree.children_left[:n])
        arrays.right[index, :n] = np.where(leaf, np.arange(n), tree.children_right[:n])
        arrays.value[index, :n] = tree.value[:n, 0, 0]
    return arrays


def predict_forest(
    feature: torch.Tensor,
    threshold: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    value: torch.Tensor,
    x: torch.Tensor,
) -> torch.Tensor:
    """``[N]`` mean prediction of the trees for ``x [N, F]``; zeros when the forest is empty (no tree).

    Candidates go through in blocks of :data:`BLOCK`, so the gathers of one walk stay in the CPU's cache (a
    100,000-candidate walk in one piece was 5x slower; ``benchmarks/scale_bench.py``).
    """
    if feature.shape[0] == 0 or len(x) == 0:
        return x.new_zeros(len(x))
    arrays = ForestTensors(feature, threshold, left, right, value)
    return torch.cat([_walk(arrays, x[start : start + BLOCK]) for start in range(0, len(x), BLOCK)])


#: Candidates walked at once: their ``[F, BLOCK]`` inputs and ``[trees, BLOCK]`` positions stay in cache.
BLOCK = 4096
#: Levels every pair walks before finished ones leave: almost no leaf is this shallow, so skipping the bookkeeping
#: costs fewer gathers than it saves (leaves point to themselves, so a finished pair stays where it is).
DENSE_LEVELS = 4


def _walk(forest: ForestTensors, x: torch.Tensor) -> torch.Tensor:
    """:func:`predict_forest` for one block: every (tree, candidate) pair walks down one level per step.

    Node arrays are flattened (children shifted to flat indices) so a step is a few 1-D gathers; after
    :data:`DENSE_LEVELS` steps, pairs that reached a leaf leave the walk, so the cost follows the mean leaf depth, not
    the deepest branch.
    """
    feature, threshold, left, right, value = forest
    trees, width = feature.shape
    count = len(x)
    x_flat = x.T.contiguous().reshape(-1)  # [F * N]: feature f of candidate n at f * N + n
    feature_flat = feature.reshape(-1)
    column = feature_flat.clamp(min=0) * count  # where a node's feature starts in x_flat (leaves read column 0)
    threshold_flat = threshold.reshape(-1)
    shift = torch.arange(trees, device=x.device).repeat_interleave(width) * width
    left_flat, right_flat = left.reshape(-1) + shift, right.reshape(-1) + shift
    candidate = torch.arange(count, device=x.device).repeat(trees)  # [T * N]
    node = torch.arange(trees, device=x.device).repeat_interleave(count) * width  # every pair at its tree's root

    def step(at: torch.Tensor, of: torch.Tensor) -> torch.Tensor:
        go_left = x_flat[column[at] + of] <= threshold_flat[at]
        return torch.where(go_left, left_flat[at], right_flat[at])

    for _ in range(DENSE_LEVELS):
        node = step(node, candidate)
    active = torch.nonzero(feature_flat[node] >= 0).squeeze(1)
    while len(active):
        reached = step(node[active], candidate[active])
        node[active] = reached
        active = active[feature_flat[reached] >= 0]
    return value.reshape(-1)[node].reshape(trees, count).mean(0)
