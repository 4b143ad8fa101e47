"""Label sampled training tasks with every candidate: the meta-training records of the Model Spider scorer.

Model Spider trains its scorer on many cheap tasks whose model ranking is approximated by forward passes. This module
builds those records: it samples training tasks from datasets (:mod:`.tasks`), runs every candidate on every task of
its modality, scores the features with transferability estimators (LogME, NCE, H-score by default), optionally
fine-tunes a budgeted subset for the real accuracy (:mod:`.finetune`), and stores everything in a records folder
(:mod:`.store`) together with each task's tokens (class prototypes from the general encoder).

Distribution (Accelerate, one code path for 1 process, N GPUs or N nodes): the (model, task) pairs still to label are
grouped by model into work units; a model with more pending pairs than a process's fair share is cut into several
units. Units are dealt to processes largest first (parameters x pairs), each to the least loaded process, so every
process loads each of its models once and runs it on all of its tasks: features are extracted once for the training
samples of those tasks, then each task's rows are scored.

Determinism: every process draws the same pools and tasks from the same seed; each dataset's samples start a new
forward batch (its segment is padded to whole batches) and are always the union of all its tasks' training samples,
so a model gives bit-identical features whichever process runs it, with whichever of its tasks, and estimators and
CPU fine-tunes run on one thread. One or two processes, a fresh or a resumed run: the same records.

Resumability and budgets: each finished pair is one appended line (:class:`.store.Journal`); a new run labels only
pairs no line holds. ``Budget.max_pairs`` takes the first pending pairs in task order (whole tasks first),
``Budget.max_seconds`` stops each process before its next pair once the time is spent; run again to continue.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import CandidateLoadError, EstimatorInputError, InvalidRecordsError
from ..hub.records import ModelRecord
from ..rerank.distributed import _one_thread, estimate, estimator_spec, partial_state
from ..rerank.fetch import fetch_candidate
from ..rerank.forward import CandidateFeatures, extract_features
from ..rerank.options import ForwardOptions
from ..tokens.sources import TaskSource, load_task_source
from ..tokens.task import TaskTokens
from .finetune import FinetuneProtocol, FinetuneResult, finetune_accuracy
from .store import Journal, PairRecord, RecordsFolder
from .tasks import DatasetPool, TaskSampling, TrainingTask, draw_pool, sample_tasks

logger = logging.getLogger(__name__)

#: The estimators labelled by default: one evidence-based (LogME), one head-based (NCE), one discriminant (H-score).
DEFAULT_ESTIMATORS = ("logme", "nce", "hscore")


@dataclass(frozen=True)
class Budget:
    """When a run stops (a later run continues where it stopped).

    Args:
        max_pairs: label at most this many pairs in this run (whole tasks first).
        max_seconds: each process starts no new pair after this many wall seconds of labelling.
    """

    max_pairs: int | None = None
    max_seconds: float | None = None


@dataclass(frozen=True)
class BuildSummary:
    """What one run did, summed over its processes.

    Args:
        folder: the records folder.
        total_pairs: pairs the build has in all (candidates x tasks of their modality).
        recorded: pairs recorded after this run (all runs, failures included).
        labelled: pairs this run recorded.
        failed: of those, pairs whose model could not be run (recorded with their reason).
        seconds: wall seconds of this run's labelling (the slowest process).
        load_seconds / forward_seconds / estimate_seconds / finetune_seconds: time spent per part, all processes.
        processes: how many processes shared the work.
    """

    folder: Path
    total_pairs: int
    recorded: int
    labelled: int
    failed: int
    seconds: float
    load_seconds: float
    forward_seconds: float
    estimate_seconds: float
    finetune_seconds: float
    processes: int

    @property
    def remaining(self) -> int:
        return self.total_pairs - self.recorded

    @property
    def pairs_per_second(self) -> float:
        return self.labelled / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class WorkUnit:
    """A model and some of its pending tasks, for one process: the model is loaded once and run once."""

    model: str
    tasks: tuple[str, ...]


@dataclass
class _Tally:
    labelled: int = 0
    failed: int = 0
    load: float = 0.0
    forward: float = 0.0
    estimate: float = 0.0
    finetune: float = 0.0
    seconds: float = 0.0


def build_records(
    candidates: Sequence[ModelRecord],
    datasets: Sequence[Any],
    output: str | os.PathLike[str],
    *,
    sampling: TaskSampling | None = None,
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
    finetune: FinetuneProtocol | None = None,
    finetune_tasks_per_dataset: int = 0,
    budget: Budget | None = None,
    options: ForwardOptions | None = None,
    text_encoder: str | None = None,
    image_encoder: str | None = None,
    split: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
    retry_failed: bool = False,
) -> BuildSummary:
    """Sample training tasks from ``datasets``, label them with ``candidates`` and write the records to ``output``.

    Call it the same way in every process (``accelerate launch``); only the main process writes the manifest and the
    task tokens, every process appends its own pairs. Running it again on the same folder resumes.

    Args:
        candidates: the models to label with; only the main process's list is read, and pinned (with its ``sha``) in
            the manifest, which every process plans from. Later runs may add candidates; earlier ones stay.
        datasets: anything :func:`~hf_spider.tokens.sources.load_task_source` reads (local paths, Hub dataset ids,
            ``datasets`` objects) or :class:`~hf_spider.tokens.sources.TaskSource`.
        output: the records folder (created; on several nodes it must be a shared filesystem).
        sampling: how tasks are drawn (default :class:`TaskSampling`); ``test_per_class`` must be > 0 to fine-tune.
        estimators: registered estimator names; NCE (like LEEP) reads the model's own classification head, and a model
            without one gets no value for it (the reason is recorded in the pair's ``errors``).
        finetune: the fine-tuning protocol; ``None`` labels with estimators only.
        finetune_tasks_per_dataset: fine-tune every candidate on the first this many tasks of each dataset (tasks are
            already in seeded random order), so a fine-tuned task has the accuracy of every model.
        budget: when to stop (a later run continues).
        options: how candidates are fetched and run (safety: safetensors only, no remote code by default).
        text_encoder / image_encoder: the general encoders of the task tokens (default those of
            :mod:`hf_spider.constants`, as ``hf-spider rank`` uses).
        split / label_column / input_column: passed to ``load_task_source`` for every dataset given by name.
        retry_failed: label again the pairs a previous run recorded as failed.

    Returns:
        A :class:`BuildSummary` (every process gets the same one).

    Raises:
        InvalidDatasetError: a dataset cannot be read or sampled.
        InvalidRecordsError: ``output`` holds records built with other settings or data.
        EstimatorInputError: an unknown estimator, or one that needs more than a forward pass on the task.
    """
    from accelerate.utils import broadcast_object_list, gather_object

    sampling = sampling or TaskSampling()
    budget = budget or Budget()
    options = options or ForwardOptions()
    estimators = tuple(dict.fromkeys(estimators))
    for name in estimators:
        estimator_spec(name)
    if finetune is not None and finetune_tasks_per_dataset > 0 and sampling.test_per_class < 1:
        raise InvalidRecordsError(
            "fine-tuning needs held-out samples to measure accuracy on; pass test_per_class >= 1 (--test-per-class)"
        )
    if finetune is None:
        finetune_tasks_per_dataset = 0
    state = partial_state()
    folder = RecordsFolder(output)
    with state.main_process_first():  # the first process fills the datasets cache, the others read it
        pools = _draw_pools(datasets, sampling, split, label_column, input_column)
    tasks = [t for pool in pools.values() for t in sample_tasks(pool, sampling)]
    settings = {
        "sampling": sampling.to_dict(),
        "estimators": list(estimators),
        "finetune": None if finetune is None else finetune.to_dict(),
        "finetune_tasks_per_dataset": finetune_tasks_per_dataset,
    }
    plan: list[Any] = [None]
    if state.is_main_process:
        manifest = _reconcile(folder, settings, pools, tasks, candidates, text_encoder, image_encoder)
        tokens_missing = not folder.tasks_path.is_file() or set(folder.read_task_tokens()) != {t.task_id for t in tasks}
        if tokens_missing:
            folder.write_task_tokens(_task_tokens(pools, tasks, sampling, text_encoder, image_encoder, state.device))
        recorded = [p.key for p in folder.read_pairs() if not (retry_failed and p.error is not None)]
        run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        plan = [{"manifest": manifest, "done": recorded, "run_id": run_id}]
    plan = broadcast_object_list(plan)  # every process plans from the main process's view of the folder
    manifest, run_id = plan[0]["manifest"], plan[0]["run_id"]
    done = {(str(model), str(task)) for model, task in plan[0]["done"]}

    records = {c["repo_id"]: _pinned(c) for c in manifest["candidates"]}
    by_id = {t.task_id: t for t in tasks}
    fine_tuned = {  # the first tasks of each dataset (tasks are in seeded random order)
        t.task_id for name in pools for t in [t for t in tasks if t.dataset == name][:finetune_tasks_per_dataset]
    }
    every = _all_pairs(list(records.values()), tasks, pools)
    pending = [pair for pair in every if pair not in done]
    if budget.max_pairs is not None:
        pending = pending[: max(budget.max_pairs, 0)]
    sizes = {m: records[m].num_parameters for m in records}
    units = plan_units(pending, sizes, state.num_processes)[state.process_index]

    tally = _Tally()
    start = time.perf_counter()
    with folder.journal(f"{run_id}-p{state.process_index:03d}") as journal, _progress(units, state) as bar:
        for unit in units:
            if _out_of_time(budget, start):
                break
            _label_unit(
                records[unit.model],
                [by_id[t] for t in unit.tasks],
                pools,
                tasks,
                estimators=estimators,
                finetune=finetune,
                fine_tuned=fine_tuned,
                options=options,
                device=state.device,
                journal=journal,
                tally=tally,
                budget=budget,
                start=start,
                bar=bar,
            )
    tally.seconds = time.perf_counter() - start
    tallies: list[_Tally] = gather_object([tally])
    state.wait_for_everyone()
    in_folder = broadcast_object_list([len(folder.read_pairs()) if state.is_main_process else 0])[0]
    return BuildSummary(
        folder=folder.path,
        total_pairs=len(every),
        recorded=in_folder,
        labelled=sum(t.labelled for t in tallies),
        failed=sum(t.failed for t in tallies),
        seconds=max(t.seconds for t in tallies),
        load_seconds=sum(t.load for t in tallies),
        forward_seconds=sum(t.forward for t in tallies),
        estimate_seconds=sum(t.estimate for t in tallies),
        finetune_seconds=sum(t.finetune for t in tallies),
        processes=state.num_processes,
    )


# ------------------------------------------------------------------------------------------------------- planning


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


def _all_pairs(
    candidates: Sequence[ModelRecord], tasks: Sequence[TrainingTask], pools: dict[str, DatasetPool]
) -> list[tuple[str, str]]:
    """Every (model, task) pair of the build, task by task (models of unknown modality try both)."""
    return [
        (c.repo_id, t.task_id) for t in tasks for c in candidates if c.modality in (pools[t.dataset].modality, None)
    ]


def _draw_pools(
    datasets: Sequence[Any],
    sampling: TaskSampling,
    split: str | None,
    label_column: str | None,
    input_column: str | None,
) -> dict[str, DatasetPool]:
    """Each dataset read once into a sample pool, keyed by a unique name (``name``, ``name-2``, ... on clashes)."""
    pools: dict[str, DatasetPool] = {}
    for dataset in datasets:
        source = (
            dataset
            if isinstance(dataset, TaskSource)
            else load_task_source(dataset, split=split, label_column=label_column, input_column=input_column)
        )
        name = source.description.name
        for n in range(2, len(datasets) + 2):
            if name not in pools:
                break
            name = f"{source.description.name}-{n}"
        pools[name] = draw_pool(source, sampling, name=name)
    return pools


def _reconcile(
    folder: RecordsFolder,
    settings: dict[str, Any],
    pools: dict[str, DatasetPool],
    tasks: Sequence[TrainingTask],
    candidates: Sequence[ModelRecord],
    text_encoder: str | None,
    image_encoder: str | None,
) -> dict[str, Any]:
    """The manifest of this build, checked against (and merged with) the one already in ``folder``; written.

    Settings, datasets (by the digest of the samples read) and tasks must match a previous run's; candidates may be
    added, and a candidate already in the manifest keeps the revision it was pinned to.

    Raises:
        InvalidRecordsError: the folder's records were built with other settings, data or encoders.
    """
    datasets = [
        {
            "name": p.name,
            "source": p.description.source or p.name,
            "modality": p.modality,
            "label_names": list(p.description.label_names),
            "pool_size": len(p.labels),
            "digest": p.digest,
        }
        for p in pools.values()
    ]
    encoders = _encoder_keys(pools, text_encoder, image_encoder)
    manifest: dict[str, Any] = {
        "settings": settings,
        "datasets": datasets,
        "tasks": [t.to_dict() for t in tasks],
        "encoders": encoders,
        "candidates": [],
    }
    previous = folder.read_manifest()
    if previous is not None:
        for part in ("settings", "datasets", "tasks", "encoders"):
            if previous[part] != manifest[part]:
                difference = _difference(previous[part], manifest[part])
                raise InvalidRecordsError(
                    f"records folder '{folder.path}' was built with other {part} ({difference}); pass the same "
                    "settings and data to resume it, or another --output to start new records"
                )
        manifest["candidates"] = list(previous["candidates"])
    known = {c["repo_id"]: c for c in manifest["candidates"]}
    for record in candidates:
        pinned = known.get(record.repo_id)
        if pinned is not None:
            if record.sha is not None and pinned["sha"] not in (None, record.sha):
                logger.info("%s stays pinned to %s, its records' revision", record.repo_id, pinned["sha"])
            continue
        entry = {
            "repo_id": record.repo_id,
            "sha": record.sha,
            "modality": record.modality,
            "num_parameters": record.num_parameters,
        }
        manifest["candidates"].append(entry)
        known[record.repo_id] = entry
    manifest["hf_spider_version"] = __version__
    folder.write_manifest(manifest)
    return manifest


def _difference(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3])
    if isinstance(old, list) and isinstance(new, list) and len(old) != len(new):
        return f"{len(old)} then, {len(new)} now"
    return "they differ"


def _pinned(entry: dict[str, Any]) -> ModelRecord:
    """The candidate as the manifest pinned it (its first run's revision)."""
    tag = {"image": "image-classification", "text": "text-classification"}.get(entry["modality"] or "")
    return ModelRecord(
        repo_id=entry["repo_id"], sha=entry["sha"], pipeline_tag=tag, num_parameters=entry["num_parameters"]
    )


# ------------------------------------------------------------------------------------------------------- task tokens


def _encoder_ids(text_encoder: str | None, image_encoder: str | None) -> dict[str, str]:
    from ..constants import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER

    return {"text": text_encoder or DEFAULT_TEXT_ENCODER, "image": image_encoder or DEFAULT_IMAGE_ENCODER}


def _encoder_keys(pools: dict[str, DatasetPool], text_encoder: str | None, image_encoder: str | None) -> dict[str, str]:
    """``id@revision`` of each encoder the tokens use (the label-name encoder is always the text one)."""
    from ..tokens.encoders import encoder_revision

    ids = _encoder_ids(text_encoder, image_encoder)
    used = {"text"} | {p.modality for p in pools.values()}
    return {m: f"{ids[m]}@{encoder_revision(ids[m])}" for m in sorted(used)}


def _task_tokens(
    pools: dict[str, DatasetPool],
    tasks: Sequence[TrainingTask],
    sampling: TaskSampling,
    text_encoder: str | None,
    image_encoder: str | None,
    device: Any,
) -> dict[str, TaskTokens]:
    """Every task's tokens, as :func:`~hf_spider.tokens.build.build_task_tokens` computes them for a query task:
    the class means of the general encoder's (L2-normalised) embeddings of its training samples, the text encoder's
    embeddings of its class names, and its statistics. Each pool sample and class name is encoded once."""
    from ..tokens.build import class_prototypes, label_texts
    from ..tokens.encoders import load_encoder
    from ..tokens.task import task_statistics

    ids = _encoder_ids(text_encoder, image_encoder)
    keys = _encoder_keys(pools, text_encoder, image_encoder)
    device = str(device)
    text = load_encoder(ids["text"], modality="text", device=device)
    out: dict[str, TaskTokens] = {}
    for name, pool in pools.items():
        mine = [t for t in tasks if t.dataset == name]
        used = sorted({i for t in mine for i in t.train})
        row = {j: r for r, j in enumerate(used)}
        encoder = load_encoder(ids[pool.modality], modality=pool.modality, device=device)
        embeddings = encoder.encode([pool.inputs[j] for j in used])  # [U, D]
        names = text.encode(label_texts(pool.description))  # [C, D]
        for task in mine:
            description = task.description(pool)
            out[task.task_id] = TaskTokens(
                description=description,
                prototypes=class_prototypes(
                    embeddings[[row[j] for j in task.train]], task.labels_of(pool, task.train), len(task.classes)
                ),
                label_embeddings=names[list(task.classes)],
                statistics=task_statistics(description),
                encoder={"text": keys["text"], pool.modality: keys[pool.modality]},
                sampling={"per_class": sampling.per_class, "seed": sampling.seed, "num_samples": len(task.train)},
            )
    return out


# ------------------------------------------------------------------------------------------------------- labelling


def _label_unit(
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
    tally: _Tally,
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
                if _out_of_time(budget, start):
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


def _out_of_time(budget: Budget, start: float) -> bool:
    return budget.max_seconds is not None and time.perf_counter() - start >= budget.max_seconds


@contextlib.contextmanager
def _progress(units: Sequence[WorkUnit], state: Any) -> Iterator[Any]:
    """The main process's progress bar over its own pairs (pairs/s and ETA); the other processes stay quiet."""
    from huggingface_hub.utils import tqdm

    suffix = f" (process 1 of {state.num_processes})" if state.num_processes > 1 else ""
    with tqdm(
        total=sum(len(u.tasks) for u in units),
        desc=f"labelling{suffix}",
        unit="pair",
        name="hf_spider.build_records",
        disable=None if state.is_main_process else True,
    ) as bar:
        yield bar
