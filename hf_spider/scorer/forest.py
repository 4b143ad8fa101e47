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

import numpy as np
import torch

#: Trees of the forest: more average out the randomised splits; beyond ~100 the cold-start ranking did not change.
TREES = 100
#: Smallest leaf: with a few hundred training models, a leaf of 3 keeps single outliers from becoming predictions.
MIN_LEAF = 3
#: Share of the features each split may choose from (sklearn's ``max_features``).
MAX_FEATURES = 0.5
_LEAF = -1


@dataclass(frozen=True)
class ForestArrays:
    """Fitted trees as padded arrays (``feature == -1`` marks a leaf; padding nodes are leaves of value 0)."""

    feature: np.ndarray  # [T, N] int64
    threshold: np.ndarray  # [T, N] float32
    left: np.ndarray  # [T, N] int64
    right: np.ndarray  # [T, N] int64
    value: np.ndarray  # [T, N] float32

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The five arrays as tensors, in :func:`predict_forest`'s argument order."""
        arrays = (self.feature, self.threshold, self.left, self.right, self.value)
        feature, threshold, left, right, value = (torch.from_numpy(a) for a in arrays)
        return feature, threshold, left, right, value


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

    Every (tree, candidate) pair walks down one level per step, and pairs that reached a leaf leave the walk, so the
    cost follows the mean leaf depth, not the deepest branch. Node arrays are flattened so each step is a few 1-D
    gathers.
    """
    trees, width = feature.shape
    count = len(x)
    if trees == 0 or count == 0:
        return x.new_zeros(count)
    x_flat = x.T.contiguous().reshape(-1)  # [F * N]: feature f of candidate n at f * N + n
    feature_flat, threshold_flat = feature.reshape(-1), threshold.reshape(-1)
    left_flat, right_flat = left.reshape(-1), right.reshape(-1)
    offsets = torch.arange(trees, device=x.device).repeat_interleave(count) * width  # [T * N]
    candidate = torch.arange(count, device=x.device).repeat(trees)  # [T * N]
    node = offsets.clone()  # flat node index of every pair, starting at each tree's root
    active = torch.arange(trees * count, device=x.device)
    while len(active):
        at = node[active]
        split = feature_flat[at]
        inner = split >= 0
        active, at, split = active[inner], at[inner], split[inner]
        go_left = x_flat[split * count + candidate[active]] <= threshold_flat[at]
        node[active] = torch.where(go_left, left_flat[at], right_flat[at]) + offsets[active]
    return value.reshape(-1)[node].reshape(trees, count).mean(0)
