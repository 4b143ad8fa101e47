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
* Models without records (cold start): their record features would be empty, so a second regressor with the same
  inputs scores them from their architecture. Each is attached to its ``MODEL_NEIGHBOURS`` closest recorded models in
  archi2vec space (its architecture edges): its record row and embedding are their weighted means. Two more inputs come
  from a ridge map from standardised archi2vec (log parameter count included) to each training target's percentile, as
  Fennec maps archi2vec to its latent vectors: its mean and nearest-task estimates. That regressor is trained on the
  recorded models played as unseen (``UNSEEN_FOLDS`` folds, each placed from the other folds with its own row hidden),
  so it learns how far to trust the neighbour and map estimates; it is shrunk hard (``cold_alpha``). A model listed in
  ``models`` without records is scored the same way. Cold-start benchmark (a quarter of the models held out entirely,
  mean weighted tau): image 0.553 -> 0.609, text 0.182 -> 0.492, against 0.547 and 0.191 for the size prior;
  leave-one-target-out unchanged.

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
from ..tokens.archi2vec import archi2vec_matrix
from ..tokens.task import TaskTokens

logger = logging.getLogger(__name__)

#: Dataset <-> dataset similarity edges kept per dataset (a sparse kNN graph, as TransferGraph thresholds).
DATASET_NEIGHBOURS = 3
#: Model <-> model architecture edges kept per model.
MODEL_NEIGHBOURS = 5
#: Weight of a "trained on" or "fine-tuned from" edge; accuracy edges weigh their normalised accuracy in [0, 1].
METADATA_EDGE_WEIGHT = 1.0
#: Columns of the mean-percentile and nearest-task estimates in the regressor inputs. The regressor learns a
#: correction to one of them, so predictions stay as finely ordered as that estimate instead of collapsing into the
#: few values of a tree ensemble's leaves: the nearest-task estimate for recorded models, the plain mean for models
#: placed by their neighbours (a noisier row: averaging over every task measured +0.02 weighted tau on the image
#: cold start, text unchanged).
MEAN_COLUMN, NEAR_COLUMN = 0, 1
#: Folds of the recorded models, each played in turn as unseen (its records hidden) to train the cold-start regressor;
#: 4 hides a quarter of them, as the cold-start benchmark does.
UNSEEN_FOLDS = 4
#: Floor on node degree before the normalised Laplacian, so an isolated node does not divide by zero.
EPS = 1e-9
#: Relative tolerance under which two distances or similarities count as tied when neighbours are picked (ties go to
#: the lower index), and magnitudes as tied when an eigenvector's sign is fixed: far above float rounding (~1e-16), far
#: below any real difference.
TIE_TOLERANCE = 1e-9
#: Eigenvalues of the normalised Laplacian (in [0, 2]) closer than this are treated as one degenerate eigenspace.
EIGEN_TOLERANCE = 1e-9


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


def tie_tolerant_order(values: np.ndarray) -> np.ndarray:
    """Indices that sort ``values`` ascending along the last axis, values within :data:`TIE_TOLERANCE` (relative to
    the largest finite magnitude) counting as tied and tied values keeping their index order.

    A plain ``argsort`` orders near-equal values by their last bits, which depend on the BLAS summation order (thread
    count, build): neighbour picks must not. Values are snapped to a grid of that tolerance first; infinities stay.
    """
    finite = np.isfinite(values)
    step = TIE_TOLERANCE * max(float(np.abs(values[finite]).max(initial=0.0)), EPS)
    snapped = np.where(finite, np.round(np.where(finite, values, 0.0) / step), values)
    return np.argsort(snapped, axis=-1, kind="stable")


def spectral_embedding(adjacency: np.ndarray, dim: int) -> np.ndarray:
    """``[N, dim]`` Laplacian eigenmap of a symmetric weighted graph (Belkin & Niyogi, 2003).

    The eigenvectors of the normalised Laplacian with the smallest non-trivial eigenvalues, rescaled by
    ``D^-1/2`` (the random-walk embedding). Dense ``eigh`` is used: the bundled graph has a few thousand nodes.

    Each connected component is embedded on its own, as Belkin & Niyogi prescribe (a component's nodes get its
    eigenvectors, zero elsewhere; a component smaller than ``dim + 1`` nodes fills fewer columns). Embedding the whole
    graph at once is not defined when it is disconnected: the Laplacian's null space then has one dimension per
    component, and the "smallest non-trivial" eigenvectors are an arbitrary basis of it that LAPACK picks by rounding
    noise. The graph of the bundled zoo has dozens of components (clusters of unrecorded models of one architecture
    linked only to each other), and that choice moved the cold-start weighted tau of the example records between
    0.37 and 0.50 with the BLAS thread count and the machine.
    For the same reason an eigenspace that is (near-)degenerate within a component gets a canonical basis
    (:func:`_canonical_basis`) and each vector a canonical sign.
    """
    from scipy.sparse.csgraph import connected_components

    dim = min(dim, len(adjacency) - 1)
    embedding = np.zeros((len(adjacency), max(dim, 0)))
    n_components, labels = connected_components(adjacency > 0, directed=False)
    for component in range(n_components):
        nodes = np.flatnonzero(labels == component)
        k = min(dim, len(nodes) - 1)
        if k >= 1:
            embedding[nodes, :k] = _component_eigenmap(adjacency[np.ix_(nodes, nodes)], k)
    return embedding / max(float(np.abs(embedding).max(initial=0.0)), EPS)


def _component_eigenmap(adjacency: np.ndarray, dim: int) -> np.ndarray:
    """``[N, dim]`` Laplacian eigenmap of a connected graph of ``N > dim`` nodes, canonical up to rounding noise."""
    from scipy.linalg import eigh

    degree = np.maximum(adjacency.sum(axis=1), EPS)
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(adjacency)) - scale[:, None] * adjacency * scale[None, :]
    values, vectors = eigh(laplacian)  # ascending; index 0 is the trivial eigenvector sqrt(degree)
    # An eigenspace straddling the cut after ``dim`` is taken whole so its basis is chosen canonically, then cut.
    stop = dim + 1
    while stop < len(values) and values[stop] - values[stop - 1] <= EIGEN_TOLERANCE:
        stop += 1
    basis = _canonical_basis(values[1:stop], vectors[:, 1:stop])[:, :dim]
    embedding = basis * scale[:, None]
    # eigh fixes each vector only up to sign: make its first entry of (near-)largest magnitude positive, so the result
    # does not depend on the LAPACK build or thread count (nodes related by a symmetry of the graph tie exactly).
    magnitude = np.abs(embedding)
    first = (magnitude >= (1.0 - TIE_TOLERANCE) * magnitude.max(axis=0)).argmax(axis=0)
    signs = np.sign(embedding[first, np.arange(embedding.shape[1])])
    return embedding * np.where(signs == 0, 1.0, signs)


def _canonical_basis(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` with each run of eigenvalues within :data:`EIGEN_TOLERANCE` of each other re-expressed in a basis
    that depends only on their span.

    ``eigh`` returns any orthonormal basis of a degenerate eigenspace, and which one depends on rounding. The span is
    well defined, so its projector ``P`` is; the basis here is the symmetric (Loewdin) orthonormalisation of ``P X``
    for a fixed ``X`` (seeded Gaussian columns), ``P X (X^T P X)^{-1/2}``, which any basis of the span gives alike.
    Non-degenerate vectors are returned as they are.
    """
    out = vectors.copy()
    start = 0
    while start < len(values):
        stop = start + 1
        while stop < len(values) and values[stop] - values[stop - 1] <= EIGEN_TOLERANCE:
            stop += 1
        if stop - start > 1:
            span = vectors[:, start:stop]
            probe = np.random.default_rng(0).standard_normal((len(vectors), stop - start))
            projected = span @ (span.T @ probe)  # P X
            gram_values, gram_vectors = np.linalg.eigh(probe.T @ projected)  # X^T P X, positive definite
            out[:, start:stop] = projected @ (gram_vectors / np.sqrt(gram_values)) @ gram_vectors.T
        start = stop
    return out


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
        alpha: ridge strength of the regressor and of the archi2vec -> percentile map.
        cold_alpha: ridge strength of the regressor for models without records (1000 had the best cold-start mean
            over both modalities of 100, 1000, 10000): it reads neighbour estimates, not records, and must not fit
            their noise.

    Example:
        >>> ranker = GraphRanker(seed=0).fit(records, models, tasks)  # doctest: +SKIP
        >>> scores = ranker.score(target_tokens, candidates)  # doctest: +SKIP
    """

    seed: int = 0
    dim: int = 4
    temperature: float = 0.1
    regressor: Literal["ridge", "boosted"] = "ridge"
    alpha: float = 1.0
    cold_alpha: float = 1000.0
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
        known = ~np.isnan(values).all(axis=1)
        self._state = {
            "row": {m: i for i, m in enumerate(model_ids)},
            "arch": arch,
            "model_emb": model_emb,
            "space": space,
            "task_emb": np.stack([dataset_emb[t] for t in space.names]),
            "values": values,
            "known": known,
            "content_map": ContentMap.fit(arch[known], values[known], self.alpha),
        }
        seen = _ModelBlock(values=values[known], arch=arch[known], embedding=model_emb[known])
        self._state["regressor"] = self._train([(seen, np.flatnonzero(known))], tasks, self.alpha, NEAR_COLUMN)
        # Each fold of the recorded models is played as unseen: placed from the other folds, its own row hidden.
        fold = np.full(len(model_ids), -1)
        fold[known] = np.arange(known.sum()) % UNSEEN_FOLDS
        cold = []
        for f in range(UNSEEN_FOLDS):
            hidden, pool = np.flatnonzero(known & (fold == f)), known & (fold != f)
            cold.append(
                (self._unseen_block(arch[hidden], pool, ContentMap.fit(arch[pool], values[pool], self.alpha)), hidden)
            )
        self._state["cold_regressor"] = self._train(cold, tasks, self.cold_alpha, MEAN_COLUMN)
        logger.info(
            "graph ranker: %d models, %d datasets, %d training pairs",
            len(model_ids),
            len(datasets),
            int((~np.isnan(values)).sum()),
        )
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates)]`` predicted accuracy percentile; models without records are placed by their architecture.

        Recorded models go to the regressor trained on records, the others to the one trained on models played as
        unseen: both predict a percentile on the same scale, so a mixed pool is ranked as one.
        """
        state = self._fitted()
        vector, neighbours = task_vector(task), state["space"].neighbours(task)
        rows = np.array([state["row"].get(c.repo_id, -1) for c in candidates], dtype=int)
        placed = rows >= 0
        arch = archi2vec_matrix(candidates)
        arch[placed] = state["arch"][rows[placed]]  # as in training, even if fit knew the model from its records only
        seen = placed.copy()
        seen[placed] = state["known"][rows[placed]]
        out = np.zeros(len(candidates))
        if seen.any():
            block = _ModelBlock(
                values=state["values"][rows[seen]], arch=arch[seen], embedding=state["model_emb"][rows[seen]]
            )
            out[seen] = state["regressor"].predict(self._features(block, vector, neighbours))
        if not seen.all():
            block = self._unseen_block(arch[~seen], state["known"], state["content_map"])
            out[~seen] = state["cold_regressor"].predict(self._features(block, vector, neighbours))
        return out

    def _train(
        self,
        blocks: Sequence[tuple[_ModelBlock, np.ndarray]],
        tasks: Mapping[str, TaskTokens],
        alpha: float,
        base: int,
    ) -> _Correction:
        """A regressor of the correction to input column ``base``, fitted on every recorded (model, training task)
        pair of ``blocks`` (each a block and the rows of its models in the records)."""
        state = self._state
        space: _TaskSpace = state["space"]
        rows, targets = [], []
        for block, models in blocks:
            for j, name in enumerate(space.names):
                observed = ~np.isnan(state["values"][models, j])
                rows.append(self._features(block.take(observed), space.vectors[j], space.neighbours(tasks[name])))
                targets.append(state["values"][models[observed], j])
        features = np.concatenate(rows)
        return _Correction(self._regressor(alpha).fit(features, np.concatenate(targets) - features[:, base]), base)

    def _regressor(self, alpha: float) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.regressor == "boosted":
            return GradientBoostingRegressor(
                n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=self.seed
            )
        if self.regressor == "ridge":
            return make_pipeline(StandardScaler(), Ridge(alpha=alpha))
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
            for k in tie_tolerant_order(-task_sim[i])[:DATASET_NEIGHBOURS]:
                connect(column[name], column[space.names[k]], max(float(task_sim[i, k]), 0.0))
        for i, j, weight in _architecture_neighbours(arch, arch, MODEL_NEIGHBOURS, exclude_self=True):
            connect(i, j, weight)
        return adjacency

    def _unseen_block(self, arch: np.ndarray, pool: np.ndarray, content: ContentMap) -> _ModelBlock:
        """What the graph can say of models without records, from the recorded models flagged in ``pool``.

        Each is attached to its ``MODEL_NEIGHBOURS`` closest pool models in archi2vec space, as its architecture edges
        would attach it: its embedding is their weighted mean and its record row their weighted mean percentile per
        target, so the nearest-task estimate speaks for it too. ``content`` adds the percentiles its architecture
        predicts.
        """
        state = self._state
        members = np.flatnonzero(pool)
        link = np.zeros((len(arch), len(members)))  # [U, P] architecture-edge weights
        for i, j, weight in _architecture_neighbours(arch, state["arch"][members], MODEL_NEIGHBOURS):
            link[i, j] = weight
        emb = (link @ state["model_emb"][members]) / np.maximum(link.sum(axis=1), EPS)[:, None]
        values = neighbour_average(state["values"][members].T, link.T).T  # [U, T]
        return _ModelBlock(values=values, arch=arch, embedding=emb, mapped=content(arch))

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
        columns = [
            np.nan_to_num(mean, nan=0.5),
            np.nan_to_num(near, nan=0.5),
            np.log1p(counts),
            block.embedding,
            block.embedding * task_emb,
            block.arch,
        ]
        if block.mapped is not None:
            columns += [block.mapped[:, others].mean(axis=1), block.mapped @ weights]
        return np.column_stack(columns)


@dataclass(frozen=True)
class _ModelBlock:
    """What the regressor knows of a set of models: records ``[R, T]``, archi2vec ``[R, A]``, embedding ``[R, dim]``,
    and for models without records the percentiles their architecture predicts ``[R, T]`` (a :class:`ContentMap`)."""

    values: np.ndarray
    arch: np.ndarray
    embedding: np.ndarray
    mapped: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> _ModelBlock:
        """The block restricted to ``rows`` (a mask or indices)."""
        mapped = None if self.mapped is None else self.mapped[rows]
        return _ModelBlock(
            values=self.values[rows], arch=self.arch[rows], embedding=self.embedding[rows], mapped=mapped
        )


@dataclass(frozen=True)
class ContentMap:
    """Ridge map from standardised archi2vec to each target's percentile: what a model's architecture alone says of its
    transfer (Fennec's archi2vec map). Standardised so the ridge penalises every column alike: the log parameter count
    varies by ~0.04 in archi2vec units over the bundled zoo (measured +0.01 weighted tau on the text cold start)."""

    centre: np.ndarray  # [A]
    spread: np.ndarray  # [A]
    weights: np.ndarray  # [A, T]
    intercept: np.ndarray  # [T]

    @classmethod
    def fit(cls, arch: np.ndarray, values: np.ndarray, alpha: float) -> ContentMap:
        """One ridge per target of ``values [M, T]``, on the models recorded there (a target none of them has keeps
        the neutral percentile 0.5)."""
        centre = arch.mean(axis=0) if len(arch) else np.zeros(arch.shape[1])
        spread = arch.std(axis=0) if len(arch) else np.ones(arch.shape[1])
        spread = np.where(spread > EPS, spread, 1.0)
        x = (arch - centre) / spread
        weights = np.zeros((arch.shape[1], values.shape[1]))
        intercept = np.full(values.shape[1], 0.5)
        for j in range(values.shape[1]):
            observed = ~np.isnan(values[:, j])
            if not observed.any():
                continue
            xo, yo = x[observed], values[observed, j]
            mean_x = xo.mean(axis=0)
            xc = xo - mean_x
            weights[:, j] = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (yo - yo.mean()))
            intercept[j] = yo.mean() - mean_x @ weights[:, j]
        return cls(centre, spread, weights, intercept)

    def __call__(self, arch: np.ndarray) -> np.ndarray:
        """``[N, T]`` predicted percentiles of models with archi2vec ``arch [N, A]``."""
        return np.asarray(((arch - self.centre) / self.spread) @ self.weights + self.intercept)


@dataclass(frozen=True)
class _Correction:
    """A fitted regressor of the correction to column ``base`` of its inputs, the estimate it starts from."""

    regressor: Any
    base: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.regressor.predict(features) + features[:, self.base], dtype=np.float64)


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
    nearest = tie_tolerant_order(distance)[:, :k]
    return [(i, int(j), float(np.exp(-distance[i, j]))) for i in range(len(queries)) for j in nearest[i]]
