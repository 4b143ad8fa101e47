"""Which process labels which (model, task) pairs: per-model work units, dealt largest first.

The pairs still to label are grouped by model into work units; a model with more pending pairs than a process's fair
share is cut into several units. Units are dealt to processes largest first (parameters x pairs), each to the least
loaded process, so every process loads each of its models once and runs it on all of its tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..hub.records import ModelRecord
from .tasks import DatasetPool, TrainingTask


@dataclass(frozen=True)
class WorkUnit:
    """A model and some of its pending tasks, for one process: the model is loaded once and run once."""

    model: str
    tasks: tuple[str, ...]


def plan_units(
    pending: Sequence[tuple[str, str]], num_parameters: dict[str, int | None], num_processes: int
) -> list[list[WorkUnit]]:
    """Deal the pending (model, task) pairs to ``num_processes`` processes as per-model units.

    A model's pending pairs form one unit unless they exceed a process's fair share (``ceil(pairs / processes)``),
    then they are cut into units of at most that many. Units go largest first (pairs x parameters; unknown sizes
    count as the largest known) to the least loaded process; a process's units of one model are merged, so it loads
    each model once. Deterministic: every process computes the same plan.
    """
    by_model: dict[str, list[str]] = {}
    for model, task in pending:
        by_model.setdefault(model, []).append(task)
    share = max(1, math.ceil(len(pending) / num_processes))
    largest = max((n or 0 for n in num_parameters.values()), default=0) or 1
    units = [
        WorkUnit(model, tuple(tasks[i : i + share]))
        for model, tasks in by_model.items()
        for i in range(0, len(tasks), share)
    ]
    cost = {id(u): len(u.tasks) * (num_parameters.get(u.model) or largest) for u in units}
    load = [0] * num_processes
    assigned: list[dict[str, list[str]]] = [{} for _ in range(num_processes)]
    for unit in sorted(units, key=lambda u: (-cost[id(u)], u.model, u.tasks)):
        rank = min(range(num_processes), key=lambda r: (load[r], r))
        load[rank] += cost[id(unit)]
        assigned[rank].setdefault(unit.model, []).extend(unit.tasks)
    order = {model: i for i, model in enumerate(by_model)}
    return [
        [WorkUnit(model, tuple(tasks)) for model, tasks in sorted(mine.items(), key=lambda kv: order[kv[0]])]
        for mine in assigned
    ]


def all_pairs(
    candidates: Sequence[ModelRecord], tasks: Sequence[TrainingTask], pools: dict[str, DatasetPool]
) -> list[tuple[str, str]]:
    """Every (model, task) pair of the build, task by task (models of unknown modality try both)."""
    return [
        (c.repo_id, t.task_id) for t in tasks for c in candidates if c.modality in (pools[t.dataset].modality, None)
    ]
