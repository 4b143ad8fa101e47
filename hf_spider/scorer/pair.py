"""The pair features: what the scorer's linear read-out sees of one seen model for one task.

Kept apart from the network (:mod:`hf_spider.scorer.model`): these are plain tensor functions of the scorer's tables
(the collaborative table of normalised accuracies, the training tasks' embeddings and Fennec's transfer space), with
no weights of their own, and they are the part that training (:mod:`hf_spider.scorer.train`) reads per task with
training tasks hidden. The numpy twin (:mod:`hf_spider.scorer.inference`) mirrors them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..tokens.ptm import text_slice

#: Temperatures of the task-similarity attention over training tasks (sharp = nearest tasks, flat = plain mean).
SIMILARITY_TEMPERATURES = (0.05, 0.2)
#: Per-candidate scalar features the read-out sees (see :func:`compute_pair_features`): the learned token read for the
#: task and label-name similarities.
PAIR_FEATURES = (
    "has_record",
    "collab_mean",
    "collab_square",
    "collab_near",
    "collab_mid",
    "label_sim",
    "dataset_sim",
    *(f"latent_{t}" for t in SIMILARITY_TEMPERATURES),
)
#: The read-out every member starts from (and, in training, is pulled back to): the mean square of the model's
#: percentiles on the training tasks (a consistently good model over one with a few lucky runs) plus its transfer-space
#: score at the flat temperature. Chosen on the benchmark's leave-one-target-out figures (23 targets leave no room for
#: a separate validation split).
PRIOR_READOUT = {"collab_square": 1.0, f"latent_{SIMILARITY_TEMPERATURES[-1]}": 1.0}


def prior_readout() -> torch.Tensor:
    """``[1, len(PAIR_FEATURES)]`` weights of :data:`PRIOR_READOUT`."""
    weight = torch.zeros(1, len(PAIR_FEATURES))
    for name, value in PRIOR_READOUT.items():
        weight[0, PAIR_FEATURES.index(name)] = value
    return weight


@dataclass(frozen=True)
class LatentTables:
    """Fennec's transfer space as the scorer reads it (:func:`hf_spider.rankers.fennec.factorise`, as tensors)."""

    model_x: torch.Tensor  # [M, k + 1] (b_m, u_m) of the seen models
    task_v: torch.Tensor  # [T, k + 1] (c_t, v_t) of the training tasks


def task_group(task: str) -> str:
    """The group of a training task: sampled training tasks (``"<dataset>:<index>"``, from ``hf-spider build-records``)
    belong to their dataset, any other task is its own group. Training on a task hides its whole group, so the
    scorer never learns to trust a sibling task sampled from the very same data, which a new task will not have."""
    return task.split(":", 1)[0]


def hidden_tasks(train_tasks: Sequence[str], exclude_task: str | None, device: torch.device) -> torch.Tensor:
    """``[T]`` the training tasks of ``exclude_task``'s group (none when it is ``None`` or not a training task)."""
    group = task_group(exclude_task) if exclude_task is not None else None
    return torch.tensor([task_group(t) == group for t in train_tasks], dtype=torch.bool, device=device)


def compute_pair_features(
    x: torch.Tensor,
    rows: torch.Tensor,
    labels: torch.Tensor,
    protos: torch.Tensor | None,
    *,
    collab: torch.Tensor,
    task_embeddings: torch.Tensor,
    task_prototypes: torch.Tensor,
    hidden: torch.Tensor,
    latent: LatentTables,
) -> torch.Tensor:
    """``[N, len(PAIR_FEATURES)]``: each seen model's learned token read for this task, and label-name similarities.

    A seen model's learned token is its own row of the collaborative table ``collab [M, T]`` and its vector in the
    transfer space ``latent`` (all zeros for a row of ``-1``: a model without a row is scored by the cold start).
    ``x``, ``rows``, ``labels`` and ``protos`` are as in :meth:`hf_spider.scorer.model.TransferScorer.pair_features`;
    ``hidden [T]`` marks the training tasks left out (:func:`hidden_tasks`).
    """
    text_dim = task_embeddings.shape[1]
    task_vec = _task_vector(labels, text_dim)
    similarity = _task_similarity(task_embeddings, task_prototypes, task_vec, protos)  # [T]
    known = rows >= 0
    index = rows.clamp(min=0)
    masked = collab.masked_fill(hidden[None, :], float("nan")) if bool(hidden.any()) else collab
    own = _row_features(masked, similarity)  # [M, 5]
    row_features = own[index] * known[:, None] if len(own) else x.new_zeros(len(x), 5)
    sims = [x[:, text_slice(name, text_dim)] @ task_vec for name in ("label_embedding", "dataset_embedding")]
    if len(latent.model_x):
        scores = _latent_scores(latent, _shared_records(collab) & ~hidden, similarity)[index] * known[:, None]
    else:
        scores = x.new_zeros(len(x), len(SIMILARITY_TEMPERATURES))
    return torch.cat([row_features, torch.stack(sims, dim=1), scores], dim=1)


def _task_vector(labels: torch.Tensor, text_dim: int) -> torch.Tensor:
    """``[D]`` normalised mean label-name embedding of a task (zeros when it has none)."""
    if len(labels) == 0:
        return labels.new_zeros(text_dim)
    return nn.functional.normalize(labels.mean(0), dim=0)


def _task_similarity(
    task_embeddings: torch.Tensor, task_prototypes: torch.Tensor, task_vec: torch.Tensor, protos: torch.Tensor | None
) -> torch.Tensor:
    """``[T]`` cosine similarity of the task to each training task: on their mean class prototypes where both
    have samples, else on their mean label-name embeddings."""
    by_labels = task_embeddings @ task_vec
    if protos is None or len(protos) == 0 or not bool(task_prototypes.any()):
        return by_labels
    mean = nn.functional.normalize(protos.mean(0), dim=0)
    with_samples = task_prototypes.abs().sum(1) > 0
    return torch.where(with_samples, task_prototypes @ mean, by_labels)


def _row_features(table: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """``[K, 5]`` has-record, mean, mean square and weighted means of ``table`` ``[K, T]`` by the task's
    ``similarity [T]`` to each training task.

    No record count: how many targets a model was fine-tuned on says nothing about a new one (weighted tau 0.06 to
    0.1 on the benchmark), yet listwise training leaned on it.
    """
    known = ~torch.isnan(table)
    values = torch.nan_to_num(table) * known
    count = known.sum(1).float()
    means = [values.sum(1) / count.clamp(min=1), (values**2).sum(1) / count.clamp(min=1)]
    top = similarity.max() if len(similarity) else similarity.new_zeros(())  # shift for a stable exp
    for temperature in SIMILARITY_TEMPERATURES:
        weights = torch.exp((similarity - top) / temperature) * known  # [K, T]
        means.append((values * weights).sum(1) / weights.sum(1).clamp(min=1e-6))
    has = (count > 0).float()
    return torch.stack([has, *(m * has for m in means)], dim=1)


def _shared_records(collab: torch.Tensor) -> torch.Tensor:
    """``[M, T]`` whether a model and a training task belong to one set of records: connected through models
    recorded on tasks (TransferGraph's image targets and models are one set, its text ones another, a zoo of
    sampled tasks a third). A transfer space factorised from several sets places them independently, so a model
    reads only the tasks of its own set."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    models, tasks = collab.shape
    rows, columns = np.nonzero(~np.isnan(collab.cpu().numpy()))
    graph = coo_matrix((np.ones(len(rows)), (rows, models + columns)), shape=(models + tasks,) * 2)
    labels = torch.from_numpy(connected_components(graph, directed=False)[1]).to(collab.device)
    return labels[:models, None] == labels[None, models:]


def _latent_scores(latent: LatentTables, known: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """``[M, len(SIMILARITY_TEMPERATURES)]`` each seen model's transfer-space score for the task at each
    temperature: ``b_m + u_m . v`` with ``v`` the softmax-weighted mean of the training tasks' vectors by their
    ``similarity [T]`` to the task (Fennec's proxy for a new task), taken over the tasks ``known [M, T]`` marks
    for the model (:func:`_shared_records`, hidden tasks left out)."""
    predicted = latent.model_x[:, :1] + latent.model_x[:, 1:] @ latent.task_v[:, 1:].T  # [M, T]
    top = similarity.max() if len(similarity) else similarity.new_zeros(())  # shift for a stable exp
    columns = []
    for temperature in SIMILARITY_TEMPERATURES:
        weights = torch.exp((similarity - top) / temperature) * known  # [M, T]
        columns.append((predicted * weights).sum(1) / weights.sum(1).clamp(min=1e-12))
    return torch.stack(columns, dim=1)
