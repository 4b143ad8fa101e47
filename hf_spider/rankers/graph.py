"""A TransferGraph-style ranker: embed models and datasets in one graph, then regress fine-tuning accuracy.

Li et al., "Model Selection with Model Zoo via Graph Learning", ICDE 2024 (TransferGraph). Their pipeline (Sec. IV):
build a graph whose nodes are models and datasets, learn node embeddings on it, then train a regressor on
``[model embedding, dataset embedding, metadata]`` to predict the fine-tuning accuracy of a (model, target) pair.

What we keep and what we change:

* Edges (Sec. IV-A): model -> dataset it was trained on (card ``datasets``), model -> base model, model -> training
  target weighted by its normalised fine-tuning accuracy, dataset <-> dataset similarity (here the cosine of the
  mean label-name embeddings of the task tokens, kept for the ``DATASET_NEIGHBOURS`` nearest), plus model <-> model
  edges between architecturally close models (archi2vec), so a model with no record is still connected.
* Embeddings: Laplacian eigenmaps of that graph (a spectral embedding) instead of node2vec walks: deterministic,
  one dense eigen-decomposition of a few hundred nodes, and close to what node2vec factorises.
* The target is never a node: the original adds it with its accuracy-free edges *and* uses the target run's
  ``train_runtime`` as a feature, which leaks. Here the target's embedding is the similarity-weighted mean of the
  training datasets' embeddings, and each training row uses the same leave-itself-out construction, so training and
  scoring features are built the same way.
* Regressor inputs: the model's embedding, its product with the target's embedding (the model-dataset interaction),
  archi2vec, and what any collaborative method knows without the target: the model's mean accuracy percentile on the
  other targets and its similarity-weighted mean (a nearest-task estimate). The regressor learns a correction to the
  nearest-task estimate. A standardised ridge is the default: on the bundled records it beat gradient-boosted trees
  (``regressor="boosted"``) by about 0.05 weighted tau per modality, whose piecewise-constant output ties the top
  models. Dataset metadata (task statistics) is left out: it is constant within one ranking.

The helpers :func:`task_vector`, :func:`similarity_weights` and :func:`percentile_matrix` are shared with the
Fennec-style ranker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import InvalidIndexError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..tokens.task import TaskTokens
from .archi2vec import archi2vec_matrix

logger = logging.getLogger(__name__)

#: Dataset <-> dataset similarity edges kept per dataset (a sparse kNN graph, as TransferGraph thresholds).
DATASET_NEIGHBOURS = 3
#: Model <-> model architecture edges kept per model.
MODEL_NEIGHBOURS = 5
#: Weight of a "trained on" or "fine-tuned from" edge; accuracy edges weigh their normalised accuracy in [0, 1].
METADATA_EDGE_WEIGHT = 1.0
#: Column of the nearest-task estimate in the regressor inputs: the trees learn a correction to it, so predictions
#: stay as finely ordered as that estimate instead of collapsing into the few values of a tree ensemble's leaves.
NEAR_COLUMN = 1
#: Floor on node degree before the normalised Laplacian, so an isolated node does not divide by zero.
EPS = 1e-9


def task_vector(tokens: TaskTokens) -> np.ndarray:
    """``[D]`` unit mean of the label-name embeddings: the task's position for task-to-task similarity.

    Raises:
        InvalidIndexError: the tokens have no label-name embeddings (build them with ``task_tokens_from_labels``).
    """
    if tokens.label_embeddings is None or len(tokens.label_embeddings) == 0:
        raise InvalidIndexError(
            f"task '{tokens.description.name}' has no label-name embeddings; build its tokens with label names"
        )
    mean = np.asarray(tokens.label_embeddings, dtype=np.float64).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), EPS)


def similarity_weights(similarity: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of cosine similarities over the last axis: how much each known task speaks for the new one."""
    logits = similarity / temperature
    logits = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def percentile_matrix(records: FinetuneRecords) -> pd.DataFrame:
    """Models x targets matrix of each model's accuracy percentile within its target (NaN where no run was recorded).

    Percentiles rather than min-max scaling: one broken run (accuracy near chance) would otherwise squeeze every other
    model of that target near 1, and a least-squares fit would spend itself on the outlier instead of the top ranks
    that weighted tau (and a user) care about. Measured on the bundled records: +0.02 to +0.05 weighted tau.
    """
    if records.accuracy.empty:
        raise InvalidIndexError("no fine-tuning records to learn from; pass records with model,target,accuracy rows")
    return records.matrix().rank(pct=True)


def neighbour_average(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``[M]`` weighted mean of ``values [M, T]`` with ``weights [T]`` (or ``[M, K]`` from ``[T, K]``), renormalised
    over each row's known entries; NaN where a row knows nothing."""
    known = ~np.isnan(values)
    mass = known @ weights
    total = np.where(known, values, 0.0) @ weights
    return np.where(mass > EPS, total / np.maximum(mass, EPS), np.nan)


def spectral_embedding(adjacency: np.ndarray, dim: int) -> np.ndarray:
    """``[N, dim]`` Laplacian eigenmap of a symmetric weighted graph (Belkin & Niyogi, 2003).

    The eigenvectors of the normalised Laplacian with the smallest non-trivial eigenvalues, rescaled by
    ``D^-1/2`` (the random-walk embedding). Dense ``eigh`` is used: the bundled graph has a few hundred nodes.
    """
    from scipy.linalg import eigh

    degree = np.maximum(adjacency.sum(axis=1), EPS)
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(adjacency)) - scale[:, None] * adjacency * scale[None, :]
    dim = min(dim, len(adjacency) - 1)
    _, vectors = eigh(laplacian, subset_by_index=[1, dim])  # skip the trivial constant eigenvector
    embedding = vectors * scale[:, None]
    # eigh fixes each vector only up to sign: orient them so the result does not depend on the LAPACK build.
    signs = np.sign(embedding[np.abs(embedding).argmax(axis=0), np.arange(embedding.shape[1])])
    return embedding * signs / max(float(np.abs(embedding).max()), EPS)


@dataclass
class _TaskSpace:
    """The training tasks that have tokens, their unit vectors and their normalised-accuracy columns."""

    names: list[str]
    vectors: np.ndarray  # [T, D]
    modalities: np.ndarray  # [T] "image" / "text"

    @classmethod
    def build(cls, targets: Sequence[str], tasks: Mapping[str, TaskTokens]) -> _TaskSpace:
        names = [t for t in targets if t in tasks and tasks[t].label_embeddings is not None]
        if not names:
            raise InvalidIndexError(
                "no training target has task tokens; pass tasks={target name: TaskTokens} for the record targets"
            )
        return cls(
            names=names,
            vectors=np.stack([task_vector(tasks[t]) for t in names]),
            modalities=np.array([tasks[t].description.modality for t in names]),
        )

    def neighbours(self, task: TaskTokens) -> np.ndarray:
        """``[T]`` mask of the training tasks that may speak for ``task``: same modality, never itself."""
        return (self.modalities == task.description.modality) & (np.array(self.names) != task.description.name)


@dataclass
class GraphRanker:
    """TransferGraph-style ranker: spectral node embeddings of the model/dataset graph + a regressor.

    Args:
        seed: seeds the boosted trees' subsampling; the embedding and the ridge are deterministic.
        dim: node-embedding dimension (4 measured best of 4, 8, 16 on the bundled records).
        temperature: softmax temperature over task cosine similarities (the target's neighbours).
        regressor: ``"ridge"`` (standardised ridge, default) or ``"boosted"`` (gradient-boosted trees).
        alpha: ridge strength.

    Example:
        >>> ranker = GraphRanker(seed=0).fit(records, models, tasks)  # doctest: +SKIP
        >>> scores = ranker.score(target_tokens, candidates)  # doctest: +SKIP
    """

    seed: int = 0
    dim: int = 4
    temperature: float = 0.1
    regressor: Literal["ridge", "boosted"] = "ridge"
    alpha: float = 1.0
    name: str = "transfergraph_graph"
    _state: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> GraphRanker:
        """Build the graph from ``records`` (never the scored target's), embed it, train the regressor."""
        matrix = percentile_matrix(records)
        by_id = {m.repo_id: m for m in models}
        model_ids = sorted(set(matrix.index) | set(by_id))
        space = _TaskSpace.build(list(matrix.columns), tasks)
        arch = archi2vec_matrix([by_id.get(m) or ModelRecord(repo_id=m) for m in model_ids])
        sources = sorted({d for m in by_id.values() for d in (m.datasets or ())} - set(matrix.columns))
        datasets = list(matrix.columns) + sources
        embedding = spectral_embedding(self._adjacency(matrix, model_ids, datasets, by_id, space, arch), self.dim)
        model_emb = embedding[: len(model_ids)]
        dataset_emb = dict(zip(datasets, embedding[len(model_ids) :], strict=True))
        values = matrix.reindex(index=model_ids, columns=space.names).to_numpy()  # [M, T]
        self._state = {
            "row": {m: i for i, m in enumerate(model_ids)},
            "arch": arch,
            "model_emb": model_emb,
            "space": space,
            "task_emb": np.stack([dataset_emb[t] for t in space.names]),
            "values": values,
        }
        rows, targets = [], []
        for j in range(len(space.names)):
            observed = ~np.isnan(values[:, j])
            block = _ModelBlock(values=values[observed], arch=arch[observed], embedding=model_emb[observed])
            others = space.neighbours(tasks[space.names[j]])
            rows.append(self._features(block, space.vectors[j], others))
            targets.append(values[observed, j])
        features = np.concatenate(rows)
        self._state["regressor"] = self._regressor().fit(features, np.concatenate(targets) - features[:, NEAR_COLUMN])
        logger.info(
            "graph ranker: %d models, %d datasets, %d training pairs",
            len(model_ids),
            len(datasets),
            sum(map(len, targets)),
        )
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates)]`` predicted accuracy percentile; unseen models are placed by their architecture."""
        state = self._fitted()
        neighbours = state["space"].neighbours(task)
        features = self._features(self._candidates(candidates), task_vector(task), neighbours)
        return np.asarray(state["regressor"].predict(features) + features[:, NEAR_COLUMN], dtype=np.float64)

    def _regressor(self) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.regressor == "boosted":
            return GradientBoostingRegressor(
                n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=self.seed
            )
        if self.regressor == "ridge":
            return make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        raise InvalidIndexError(f"unknown regressor '{self.regressor}'; use 'ridge' or 'boosted'")

    def _fitted(self) -> dict[str, Any]:
        if not self._state:
            raise InvalidIndexError(f"{type(self).__name__} is not fitted; call fit(records, models, tasks) first")
        return self._state

    def _adjacency(
        self,
        matrix: pd.DataFrame,
        model_ids: list[str],
        datasets: list[str],
        by_id: Mapping[str, ModelRecord],
        space: _TaskSpace,
        arch: np.ndarray,
    ) -> np.ndarray:
        """``[M + D, M + D]`` symmetric weighted adjacency of the model/dataset graph."""
        n_models = len(model_ids)
        row = {m: i for i, m in enumerate(model_ids)}
        column = {d: n_models + k for k, d in enumerate(datasets)}
        adjacency = np.zeros((n_models + len(datasets),) * 2)

        def connect(a: int, b: int, weight: float) -> None:
            adjacency[a, b] = adjacency[b, a] = max(adjacency[a, b], weight)

        for (model, target), value in matrix.stack().items():  # accuracy edges, training targets only
            connect(row[str(model)], column[str(target)], float(value))
        for model_id, record in by_id.items():
            for dataset in record.datasets or ():
                connect(row[model_id], column[dataset], METADATA_EDGE_WEIGHT)
            for base in record.base_models or ():
                if base in row:
                    connect(row[model_id], row[base], METADATA_EDGE_WEIGHT)
        task_sim = space.vectors @ space.vectors.T
        np.fill_diagonal(task_sim, -np.inf)
        for i, name in enumerate(space.names):
            for k in np.argsort(-task_sim[i])[:DATASET_NEIGHBOURS]:
                connect(column[name], column[space.names[k]], max(float(task_sim[i, k]), 0.0))
        for i, j, weight in _architecture_neighbours(arch, arch, MODEL_NEIGHBOURS, exclude_self=True):
            connect(i, j, weight)
        return adjacency

    def _candidates(self, candidates: Sequence[ModelRecord]) -> _ModelBlock:
        """The candidates' records, architecture and embedding.

        A model the graph has not seen is attached to its ``MODEL_NEIGHBOURS`` closest models in archi2vec space, as
        its architecture edges would attach it: its embedding is their weighted mean and its record row their
        weighted mean percentile per target, so the nearest-task estimate speaks for it too.
        """
        state = self._state
        arch = archi2vec_matrix(candidates)
        rows = np.array([state["row"].get(c.repo_id, -1) for c in candidates], dtype=int)
        seen = rows >= 0
        arch[seen] = state["arch"][rows[seen]]  # as in training, even if fit knew the model from its records only
        values = np.full((len(candidates), state["values"].shape[1]), np.nan)
        values[seen] = state["values"][rows[seen]]
        emb = np.zeros((len(candidates), state["model_emb"].shape[1]))
        emb[seen] = state["model_emb"][rows[seen]]
        unseen = np.flatnonzero(~seen)
        link = np.zeros((len(unseen), len(state["arch"])))  # [U, M] architecture-edge weights
        for i, j, weight in _architecture_neighbours(arch[unseen], state["arch"], MODEL_NEIGHBOURS):
            link[i, j] = weight
        emb[unseen] = (link @ state["model_emb"]) / np.maximum(link.sum(axis=1), EPS)[:, None]
        values[unseen] = neighbour_average(state["values"].T, link.T).T  # [U, T]
        return _ModelBlock(values=values, arch=arch, embedding=emb)

    def _features(self, block: _ModelBlock, vector: np.ndarray, others: np.ndarray) -> np.ndarray:
        """``[R, F]`` regressor inputs for the models of ``block`` on a task whose unit token vector is ``vector``.

        Only the training tasks flagged in ``others`` are used, so a training task never describes itself.
        """
        state = self._state
        space: _TaskSpace = state["space"]
        weights = np.where(others, similarity_weights(space.vectors @ vector, self.temperature), 0.0)
        weights = weights / max(float(weights.sum()), EPS)
        mean = neighbour_average(block.values, others.astype(np.float64))
        near = neighbour_average(block.values, weights)
        counts = (~np.isnan(block.values[:, others])).sum(axis=1)
        task_emb = weights @ state["task_emb"]  # [dim]: the task's place in the graph, from its neighbours
        return np.column_stack(
            [
                np.nan_to_num(mean, nan=0.5),
                np.nan_to_num(near, nan=0.5),
                np.log1p(counts),
                block.embedding,
                block.embedding * task_emb,
                block.arch,
            ]
        )


@dataclass(frozen=True)
class _ModelBlock:
    """What the regressor knows of a set of models: records ``[R, T]``, archi2vec ``[R, A]``, embedding ``[R, dim]``."""

    values: np.ndarray
    arch: np.ndarray
    embedding: np.ndarray


def _architecture_neighbours(
    queries: np.ndarray, keys: np.ndarray, k: int, *, exclude_self: bool = False
) -> list[tuple[int, int, float]]:
    """``(query row, key row, weight)`` for the ``k`` keys closest in archi2vec space, weight ``exp(-distance)``."""
    if len(keys) == 0:
        return []
    distance = np.sqrt(((queries[:, None, :] - keys[None, :, :]) ** 2).sum(axis=-1))  # [Q, K]
    if exclude_self:
        np.fill_diagonal(distance, np.inf)
    k = min(k, len(keys) - int(exclude_self))
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
    return [(i, int(j), float(np.exp(-distance[i, j]))) for i in range(len(queries)) for j in nearest[i]]
