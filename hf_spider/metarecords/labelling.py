"""Label one work unit: run its model once per modality, score every task's rows with the estimators, and fine-tune
the chosen tasks; one journal line per (model, task) pair.

Determinism: each dataset's samples start a new forward batch (its segment is padded to whole batches) and are always
the union of all its tasks' training samples, so a model gives bit-identical features whichever process runs it, with
whichever of its tasks; estimators and CPU fine-tunes run on one thread.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import CandidateLoadError, EstimatorInputError
from ..hub.records import ModelRecord
from ..rerank.distributed import _one_thread, estimate
from ..rerank.fetch import fetch_candidate
from ..rerank.forward import CandidateFeatures, extract_features
from ..rerank.options import ForwardOptions
from .finetune import FinetuneProtocol, FinetuneResult, finetune_accuracy
from .store import Journal, PairRecord
from .tasks import DatasetPool, TrainingTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """When a run stops (a later run continues where it stopped).

    Args:
        max_pairs: label at most this many pairs in this run (whole tasks first).
        max_seconds: each process starts no new pair after this many wall seconds of labelling.
    """

    max_pairs: int | None = None
    max_seconds: float | None = None


@dataclass
class Tally:
    """One process's counts and seconds per part, gathered into the :class:`~.build.BuildSummary`."""

    labelled: int = 0
    failed: int = 0
    load: float = 0.0
    forward: float = 0.0
    estimate: float = 0.0
    finetune: float = 0.0
    seconds: float = 0.0


def label_unit(
    record: ModelRecord,
    unit_tasks: Sequence[TrainingTask],
    pools: dict[str, DatasetPool],
    tasks: Sequence[TrainingTask],
    *,
    estimators: Sequence[str],
    finetune: FinetuneProtocol | None,
    fine_tuned: set[str],
    options: ForwardOptions,
    device: Any,
    journal: Journal,
    tally: Tally,
    budget: Budget,
    start: float,
    bar: Any,
) -> None:
    """Run one model once per modality of its tasks, then score (and fine-tune) each task; one line per pair."""
    for modality in dict.fromkeys(pools[t.dataset].modality for t in unit_tasks):
        mine = [t for t in unit_tasks if pools[t.dataset].modality == modality]
        inputs, rows = _canonical_inputs(mine, tasks, pools, options.batch_size)
        try:
            features = extract_features(record, inputs, modality=modality, options=options, device=device)
        except CandidateLoadError as exc:
            logger.warning("skipping %s: %s", record.repo_id, exc.reason)
            for task in mine:
                journal.append(PairRecord(record.repo_id, record.sha, task.task_id, modality, error=exc.reason))
                tally.labelled += 1
                tally.failed += 1
                bar.update(1)
            continue
        tally.load += features.load_seconds
        tally.forward += features.forward_seconds
        checkout: tuple[str, bool] | None = None
        with _single_threaded():  # estimators and CPU fine-tunes: one thread, see _single_threaded
            for task in mine:
                if out_of_time(budget, start):
                    return
                pool = pools[task.dataset]
                labels = task.labels_of(pool, task.train)
                picked = [rows[(task.dataset, j)] for j in task.train]
                scores, errors, seconds = _estimate_all(estimators, features, picked, labels)
                accuracy: float | None = None
                per_seed: tuple[float, ...] = ()
                if finetune is not None and task.task_id in fine_tuned:
                    tick = time.perf_counter()
                    try:
                        checkout = checkout or fetch_candidate(record, options)
                        result = _finetune(record, checkout, task, pool, finetune, device, options.trust_remote_code)
                        accuracy, per_seed = result.accuracy, result.per_seed
                    except CandidateLoadError as exc:
                        errors["accuracy"] = exc.reason
                    seconds["finetune"] = time.perf_counter() - tick
                    tally.finetune += seconds["finetune"]
                tally.estimate += seconds["estimate"]
                journal.append(
                    PairRecord(
                        record.repo_id,
                        record.sha,
                        task.task_id,
                        modality,
                        estimators=scores,
                        errors=errors,
                        accuracy=accuracy,
                        accuracy_per_seed=per_seed,
                        seconds=seconds,
                    )
                )
                tally.labelled += 1
                bar.update(1)


def _canonical_inputs(
    mine: Sequence[TrainingTask], tasks: Sequence[TrainingTask], pools: dict[str, DatasetPool], batch_size: int
) -> tuple[list[Any], dict[tuple[str, int], int]]:
    """The inputs a model runs on for ``mine``: per dataset they touch, the union of *all* its tasks' training
    samples, padded to whole batches; and the row of each ``(dataset, pool index)``.

    Always the same union and the same batches for a dataset, so features do not depend on which of its tasks a
    process (or a resumed run) has: batch composition can change a float's last bits.
    """
    inputs: list[Any] = []
    rows: dict[tuple[str, int], int] = {}
    for name in dict.fromkeys(t.dataset for t in mine):
        used = sorted({i for t in tasks if t.dataset == name for i in t.train})
        pool = pools[name]
        for j in used:
            rows[(name, j)] = len(inputs)
            inputs.append(pool.inputs[j])
        inputs += [pool.inputs[used[-1]]] * (-len(used) % batch_size)
    return inputs, rows


def _estimate_all(
    estimators: Sequence[str], features: CandidateFeatures, picked: list[int], labels: np.ndarray
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """Each estimator on the task's rows of the features: values, and why any could not be computed."""
    tick = time.perf_counter()
    subset = replace(
        features,
        features=features.features[picked],
        probabilities=None if features.probabilities is None else features.probabilities[picked],
    )
    scores: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in estimators:
        try:
            scores[name] = estimate(name, subset, labels)
        except EstimatorInputError as exc:
            errors[name] = str(exc)
    return scores, errors, {"estimate": time.perf_counter() - tick}


def _finetune(
    record: ModelRecord,
    checkout: tuple[str, bool],
    task: TrainingTask,
    pool: DatasetPool,
    protocol: FinetuneProtocol,
    device: Any,
    trust_remote_code: bool,
) -> FinetuneResult:
    folder, use_safetensors = checkout
    return finetune_accuracy(
        record.repo_id,
        folder,
        use_safetensors=use_safetensors,
        modality=pool.modality,
        num_classes=len(task.classes),
        train=([pool.inputs[j] for j in task.train], task.labels_of(pool, task.train)),
        test=([pool.inputs[j] for j in task.test], task.labels_of(pool, task.test)),
        protocol=protocol,
        device=device,
        trust_remote_code=trust_remote_code,
    )


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """One CPU thread for torch and for every BLAS / OpenMP pool (NumPy's, SciPy's) while a model's tasks are scored.

    Two reasons: the values must not depend on the process count (a reduction split over threads changes its last
    digits, and a process of ``N`` gets fewer threads than a lone one), and the pools' spinning worker threads fight
    each other: with SciPy's BLAS free to use every core, one process labelled a third as many pairs per second
    (``benchmarks/build_records_bench.py``).
    """
    from threadpoolctl import threadpool_limits

    with _one_thread(), threadpool_limits(limits=1):
        yield


def out_of_time(budget: Budget, start: float) -> bool:
    """``budget.max_seconds`` have passed since ``start`` (checked before each pair)."""
    return budget.max_seconds is not None and time.perf_counter() - start >= budget.max_seconds
