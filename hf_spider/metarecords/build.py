"""Label sampled training tasks with every candidate: the meta-training records of the Model Spider scorer.

Model Spider trains its scorer on many cheap tasks whose model ranking is approximated by forward passes. This module
builds those records: it samples training tasks from datasets (:mod:`.tasks`), runs every candidate on every task of
its modality, scores the features with transferability estimators (LogME, NCE, H-score by default), optionally
fine-tunes a budgeted subset for the real accuracy (:mod:`.finetune`), and stores everything in a records folder
(:mod:`.store`) together with each task's tokens (class prototypes from the general encoder, :mod:`.task_tokens`).
Each run checks and extends the folder's manifest (:mod:`.manifest`).

Distribution (Accelerate, one code path for 1 process, N GPUs or N nodes): the (model, task) pairs still to label are
grouped by model into work units and dealt to the processes (:mod:`.plan`), so every process loads each of its models
once and runs it on all of its tasks: features are extracted once for the training samples of those tasks, then each
task's rows are scored (:mod:`.labelling`).

Determinism: every process draws the same pools and tasks from the same seed, and a model gives bit-identical
features whichever process runs it (see :mod:`.labelling`). One or two processes, a fresh or a resumed run: the same
records.

Resumability and budgets: each finished pair is one appended line (:class:`.store.Journal`); a new run labels only
pairs no line holds. ``Budget.max_pairs`` takes the first pending pairs in task order (whole tasks first),
``Budget.max_seconds`` stops each process before its next pair once the time is spent; run again to continue.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRecordsError
from ..hub.records import ModelRecord
from ..rerank.distributed import estimator_spec, partial_state
from ..rerank.options import ForwardOptions
from ..tokens.sources import TaskSource, load_task_source
from .finetune import FinetuneProtocol
from .labelling import Budget, Tally, label_unit, out_of_time
from .manifest import pinned_record, reconcile
from .plan import WorkUnit, all_pairs, plan_units
from .store import RecordsFolder
from .task_tokens import task_tokens
from .tasks import DatasetPool, TaskSampling, draw_pool, sample_tasks

#: The estimators labelled by default: one evidence-based (LogME), one head-based (NCE), one discriminant (H-score).
DEFAULT_ESTIMATORS = ("logme", "nce", "hscore")


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
        manifest = reconcile(folder, settings, pools, tasks, candidates, text_encoder, image_encoder)
        tokens_missing = not folder.tasks_path.is_file() or set(folder.read_task_tokens()) != {t.task_id for t in tasks}
        if tokens_missing:
            folder.write_task_tokens(task_tokens(pools, tasks, sampling, text_encoder, image_encoder, state.device))
        recorded = [p.key for p in folder.read_pairs() if not (retry_failed and p.error is not None)]
        run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        plan = [{"manifest": manifest, "done": recorded, "run_id": run_id}]
    plan = broadcast_object_list(plan)  # every process plans from the main process's view of the folder
    manifest, run_id = plan[0]["manifest"], plan[0]["run_id"]
    done = {(str(model), str(task)) for model, task in plan[0]["done"]}

    records = {c["repo_id"]: pinned_record(c) for c in manifest["candidates"]}
    by_id = {t.task_id: t for t in tasks}
    fine_tuned = {  # the first tasks of each dataset (tasks are in seeded random order)
        t.task_id for name in pools for t in [t for t in tasks if t.dataset == name][:finetune_tasks_per_dataset]
    }
    every = all_pairs(list(records.values()), tasks, pools)
    pending = [pair for pair in every if pair not in done]
    if budget.max_pairs is not None:
        pending = pending[: max(budget.max_pairs, 0)]
    sizes = {m: records[m].num_parameters for m in records}
    units = plan_units(pending, sizes, state.num_processes)[state.process_index]

    tally = Tally()
    start = time.perf_counter()
    with folder.journal(f"{run_id}-p{state.process_index:03d}") as journal, _progress(units, state) as bar:
        for unit in units:
            if out_of_time(budget, start):
                break
            label_unit(
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
    tallies: list[Tally] = gather_object([tally])
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
