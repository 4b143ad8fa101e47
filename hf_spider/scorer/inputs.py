"""What the scorer reads, assembled from tokens: a task's tensors, the cold-start forest's inputs, and the
evidence kind a token head supports. Training and scoring both build them here, so the two always agree."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ScorerConfigError
from ..tokens.metadata import METADATA_NAMES
from ..tokens.ptm import family_slice, metadata_slice
from ..tokens.task import TaskTokens

_METADATA = {name: i for i, name in enumerate(METADATA_NAMES)}


def task_inputs(
    task: TaskTokens, text_dim: int, proto_dim: int, stats_dim: int, *, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(labels [C_l, D], prototypes [C_p, D_p], statistics [S], mask [C_l + C_p + 1])``; missing parts masked.

    Raises:
        ScorerConfigError: a part's width is not the scorer's (the task was encoded by other encoders).
    """

    def part(value: np.ndarray | None, dim: int, name: str) -> torch.Tensor:
        if value is None:
            return torch.zeros(0, dim, device=device)
        array = np.asarray(value, dtype=np.float32).reshape(-1, value.shape[-1])
        if array.shape[1] != dim:
            raise ScorerConfigError(
                f"task '{task.description.name}' {name} have width {array.shape[1]} but the scorer expects {dim}; "
                "encode the task with the scorer's encoders"
            )
        return torch.from_numpy(array).to(device)

    labels = part(task.label_embeddings, text_dim, "label embeddings")
    protos = part(task.prototypes, proto_dim, "prototypes")
    stats = torch.zeros(stats_dim, device=device)
    if task.statistics is not None:
        stats = part(task.statistics, stats_dim, "statistics")[0]
    mask = torch.cat(
        [
            torch.ones(len(labels) + len(protos), dtype=torch.bool, device=device),
            torch.tensor([task.statistics is not None], device=device),
        ]
    )
    return labels, protos, stats, mask


#: Columns the cold-start forest reads after the token head: the nearest seen ancestor's mean percentile and a flag.
COLD_START_EXTRA = ("ancestor_percentile", "has_ancestor")


def cold_start_features(
    head: torch.Tensor, ancestor_percentile: torch.Tensor, has_ancestor: torch.Tensor
) -> torch.Tensor:
    """``[N, HEAD_DIM + 2]`` inputs of the cold-start forest: token heads and the ancestor columns
    (:data:`COLD_START_EXTRA`); training and scoring build them here, so they always agree."""
    return torch.cat([head, ancestor_percentile[:, None], has_ancestor[:, None]], dim=1)


def evidence_of_head(x: np.ndarray) -> list[str]:
    """Evidence kinds a model without records or seen ancestor would get from its token head ``x [N, in_dim]``
    (``facts`` / ``content`` / ``size``): how training groups its cold-start checks, the way scoring labels them."""
    meta = x[:, metadata_slice()]
    facts = (meta[:, _METADATA["has_imagenet_top1"]] > 0) | (meta[:, _METADATA["has_pretraining"]] > 0)
    family = x[:, family_slice()].sum(1) > 0
    return ["facts" if f else "content" if c else "size" for f, c in zip(facts, family, strict=True)]
