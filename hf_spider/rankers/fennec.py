"""A Fennec-style ranker: models and tasks as vectors of one latent transfer space, scored by a dot product.

Bai et al., "Pre-Trained Model Recommendation for Downstream Fine-tuning" (Fennec), 2024. Sec. 4: every model ``m``
and task ``t`` gets a vector of a shared transfer space in which their inner product predicts transfer performance;
a new task is placed by a large model acting as proxy (it embeds the task's description) and a model by its
architecture (archi2vec), so scoring a candidate costs one dot product.

How that reads here:

* The space is learned from the records' performance matrix ``Y [M, T]`` (each model's accuracy percentile within
  the target, missing entries unobserved) by a biased low-rank factorisation ``Y_mt ~ b_m + c_t + u_m . v_t``
  fitted with alternating ridge regressions (ALS).
* archi2vec enters as the prior of each model: the ridge pulls ``[b_m, u_m]`` towards ``W a_m`` (``a_m`` the archi2vec
  vector, ``W`` refitted every round), so a model with few records borrows from its architecture and a model with
  none is placed at ``W a_m`` outright.
* The proxy is the general text encoder of the task tokens: a new task's vector is the softmax-weighted mean of the
  training tasks' vectors, weighted by the cosine similarity of their label-name embeddings. The softmax temperature
  is learned at fit time by leave-one-task-out over the training tasks.

The score of candidate ``m`` on a new task is ``b_m + u_m . v_new`` (``c_new`` is the same for every candidate).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidIndexError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..tokens.archi2vec import archi2vec_matrix
from ..tokens.task import TaskTokens
from .graph import _TaskSpace, percentile_matrix, similarity_weights, task_vector

logger = logging.getLogger(__name__)

#: Softmax temperatures tried for the task map; the one with the best leave-one-task-out weighted tau is kept.
TEMPERATURES = (0.05, 0.1, 0.2, 0.5, 1.0)
#: ALS rounds; the reconstruction error on the bundled records stops moving well before this.
MAX_ITER = 25


@dataclass
class FennecRanker:
    """Fennec-style ranker: latent transfer space from the records, archi2vec prior for models, token proxy for tasks.

    Args:
        seed: seeds the initial factors.
        rank: dimension of the transfer space.
        reg: ridge strength of the factorisation (and of the pull towards the archi2vec prior).
        arch_reg: ridge strength of the map from archi2vec to model vectors (0.1 measured best of 1, 0.1, 0.01
            for unseen models on the bundled records).

    Example:
        >>> ranker = FennecRanker(seed=0).fit(records, models, tasks)  # doctest: +SKIP
        >>> scores = ranker.score(target_tokens, candidates)  # doctest: +SKIP
    """

    seed: int = 0
    rank: int = 4
    reg: float = 1.0
    arch_reg: float = 0.1
    name: str = "fennec"
    _state: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> FennecRanker:
        """Factorise the performance matrix of ``records`` and learn the archi2vec and task maps."""
        matrix = percentile_matrix(records)
        by_id = {m.repo_id: m for m in models}
        space = _TaskSpace.build(list(matrix.columns), tasks)
        values = matrix.to_numpy()  # [M, T]
        arch = with_bias(archi2vec_matrix([by_id.get(m) or ModelRecord(repo_id=str(m)) for m in matrix.index]))
        latent = factorise(values, arch, rank=self.rank, reg=self.reg, arch_reg=self.arch_reg, seed=self.seed)
        model_x, task_v, arch_map = latent.model_x, latent.task_v, latent.arch_map
        column = {t: j for j, t in enumerate(matrix.columns)}
        task_vectors = task_v[[column[t] for t in space.names]]  # [T', k + 1]: (c_t, v_t) of tasks with tokens
        self._state = {
            "row": {str(m): i for i, m in enumerate(matrix.index)},
            "model_x": model_x,
            "arch_map": arch_map,
            "space": space,
            "task_vectors": task_vectors,
        }
        self._state["temperature"] = self._learn_temperature(values[:, [column[t] for t in space.names]], tasks)
        logger.info(
            "fennec: %d models x %d targets, rank %d, task temperature %.2f",
            *values.shape,
            self.rank,
            self._state["temperature"],
        )
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates)]`` ``b_m + u_m . v_task``; candidates without records sit at their archi2vec position."""
        state = self._fitted()
        v = self._task_vector(task_vector(task), state["space"].neighbours(task), state["temperature"])
        return self.model_vectors(candidates) @ np.concatenate([[1.0], v[1:]])

    def model_vectors(self, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates), k + 1]`` ``(b_m, u_m)``: from the records if the model has some, else from archi2vec."""
        state = self._fitted()
        out = with_bias(archi2vec_matrix(candidates)) @ state["arch_map"]
        for i, c in enumerate(candidates):
            row = state["row"].get(c.repo_id)
            if row is not None:
                out[i] = state["model_x"][row]
        return out

    def _fitted(self) -> dict[str, Any]:
        if not self._state:
            raise InvalidIndexError(f"{type(self).__name__} is not fitted; call fit(records, models, tasks) first")
        return self._state

    def _task_vector(self, vector: np.ndarray, neighbours: np.ndarray, temperature: float) -> np.ndarray:
        """``[k + 1]`` ``(c, v)`` of a task: its token neighbours' vectors, weighted by label-name similarity."""
        state = self._state
        if not neighbours.any():  # nothing comparable was recorded: rank by the model biases alone
            return np.zeros(state["task_vectors"].shape[1])
        weights = np.where(neighbours, similarity_weights(state["space"].vectors @ vector, temperature), 0.0)
        return (weights / weights.sum()) @ state["task_vectors"]

    def _learn_temperature(self, values: np.ndarray, tasks: Mapping[str, TaskTokens]) -> float:
        """The softmax temperature whose leave-one-task-out rankings agree best with the records (weighted tau)."""
        from scipy.stats import weightedtau

        state = self._state
        space: _TaskSpace = state["space"]
        best, best_tau = TEMPERATURES[0], -np.inf
        for temperature in TEMPERATURES:
            taus = []
            for j, name in enumerate(space.names):
                observed = ~np.isnan(values[:, j])
                if observed.sum() < 3:
                    continue
                v = self._task_vector(space.vectors[j], space.neighbours(tasks[name]), temperature)
                predicted = state["model_x"][observed] @ np.concatenate([[1.0], v[1:]])
                taus.append(weightedtau(values[observed, j], predicted)[0])
            tau = float(np.nanmean(taus)) if taus else -np.inf
            if tau > best_tau:
                best, best_tau = temperature, tau
        return best


@dataclass(frozen=True)
class TransferSpace:
    """A factorised performance matrix ``Y_mt ~ b_m + c_t + u_m . v_t`` and its archi2vec prior.

    Args:
        model_x: ``[M, k + 1]`` ``(b_m, u_m)`` per model row of ``Y``.
        task_v: ``[T, k + 1]`` ``(c_t, v_t)`` per task column of ``Y``.
        arch_map: ``[A + 1, k + 1]`` ridge map from ``(archi2vec, 1)`` to ``(b_m, u_m)``: where a model with no record
            sits.
    """

    model_x: np.ndarray
    task_v: np.ndarray
    arch_map: np.ndarray


def factorise(
    values: np.ndarray, arch: np.ndarray, *, rank: int = 4, reg: float = 1.0, arch_reg: float = 0.1, seed: int = 0
) -> TransferSpace:
    """ALS for ``Y ~ b_m + c_t + u_m . v_t`` with ``[b_m, u_m]`` shrunk towards ``W a_m`` (Fennec's transfer space).

    Args:
        values: ``[M, T]`` performance matrix (accuracy percentiles), NaN where unobserved.
        arch: ``[M, A + 1]`` archi2vec of each row with a constant column (:func:`with_bias`).
        rank: dimension ``k`` of the space.
        reg: ridge strength of the factors (and of the pull towards the archi2vec prior).
        arch_reg: ridge strength of the map ``W`` from archi2vec to model vectors.
        seed: seeds the initial factors.
    """
    rng = np.random.default_rng(seed)
    observed = ~np.isnan(values)
    y = np.where(observed, values, 0.0)
    mask = observed.astype(np.float64)
    n_models, n_tasks = values.shape
    k = rank
    model_x = np.column_stack([np.zeros(n_models), 0.1 * rng.standard_normal((n_models, k))])
    task_v = np.column_stack([np.zeros(n_tasks), 0.1 * rng.standard_normal((n_tasks, k))])
    arch_map = np.zeros((arch.shape[1], k + 1))
    eye = np.eye(k + 1)
    free_bias = np.diag([1e-6] + [1.0] * k)  # the task bias c_t is barely shrunk: tasks differ in mean on purpose
    for _ in range(MAX_ITER):
        # models: features (1, v_t), targets y - c_t, prior W a_m
        features = np.column_stack([np.ones(n_tasks), task_v[:, 1:]])  # [T, k + 1]
        target = (y - task_v[:, 0][None, :]) * mask
        gram = masked_grams(mask, features) + reg * eye
        prior = arch @ arch_map
        model_x = np.linalg.solve(gram, (target @ features + reg * prior)[..., None])[..., 0]
        # tasks: features (1, u_m), targets y - b_m
        features = np.column_stack([np.ones(n_models), model_x[:, 1:]])  # [M, k + 1]
        target = (y - model_x[:, 0][:, None]) * mask
        gram = masked_grams(mask.T, features) + reg * free_bias
        task_v = np.linalg.solve(gram, (target.T @ features)[..., None])[..., 0]
        # archi2vec map: ridge from a_m to (b_m, u_m)
        arch_map = np.linalg.solve(arch.T @ arch + arch_reg * np.eye(arch.shape[1]), arch.T @ model_x)
    return TransferSpace(model_x=model_x, task_v=task_v, arch_map=arch_map)


def masked_grams(mask: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``[R, K, K]`` the Gram matrix of the ``features [C, K]`` each row of ``mask [R, C]`` selects:
    ``sum_c mask_rc f_c f_c^T``.

    One matrix product with the ``C`` outer products flattened (``[C, K * K]``), not a three-operand ``einsum``: numpy
    runs that as a plain loop, about 50 times slower. :func:`factorise` builds two per round, and training factorises
    once per task group (:func:`~hf_spider.scorer.train.fit_transfer_spaces`: one per target of a CSV), so this
    product set the pace of the part of training that grows with the square of the number of targets. Equal to the
    ``einsum`` up to the order of the sums.
    """
    outer = (features[:, :, None] * features[:, None, :]).reshape(len(features), -1)
    return (mask @ outer).reshape(len(mask), features.shape[1], features.shape[1])


def with_bias(arch: np.ndarray) -> np.ndarray:
    """``[N, A + 1]`` archi2vec with a constant column, so the archi2vec map has an intercept."""
    return np.column_stack([arch.astype(np.float64), np.ones(len(arch))])
