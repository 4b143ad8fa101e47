"""``hf-spider build-records``: label many sampled tasks with every candidate, the scorer's meta-training records.

Runs as is in one process, or over several GPUs / nodes with ``accelerate launch -m hf_spider.metarecords ...`` (same
arguments). Resumable: run the same command again after an interruption or a budget stop.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import InvalidDatasetError, InvalidIndexError
from ..hub.output_paths import check_output_dir
from ..hub.push import check_can_push
from ._forward import add_forward_arguments, forward_options
from ._types import (
    names,
    nonnegative_int,
    nonnegative_number,
    output_path,
    positive_int,
    positive_number,
    seed,
    seeds,
)

_DESCRIPTION = """\
Sample training tasks (2..C classes, --per-class examples each) from each dataset, run every candidate on every
task of its modality, score the features with transferability estimators (LogME, NCE, H-score by default) and,
for the first --finetune-tasks tasks of each dataset, fine-tune every candidate briefly for its real accuracy.
Writes a records folder (manifest, task tokens with class prototypes, one JSON line per (model, task) pair;
docs/records.md) that train-scorer learns from. Each model is loaded once per process and run on all its tasks.
Killed or stopped by a budget, the same command resumes; nothing is labelled twice. Candidates are safe like
re-ranking: safetensors only and no remote code unless --allow-pickle / --trust-remote-code, revisions pinned at
the first run.
Several processes: accelerate launch --multi_gpu --num_processes N -m hf_spider.metarecords ARGS."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build-records",
        help="label sampled tasks with every candidate (estimators, short fine-tunes): training data for the scorer",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=output_path, required=True, help="records folder to create or resume")
    data = parser.add_argument_group("datasets")
    data.add_argument(
        "--dataset",
        action="append",
        required=True,
        help="image folder, CSV/JSON/Parquet file, save_to_disk folder or Hub dataset id (repeatable)",
    )
    data.add_argument("--split", help="split to sample (default: train, else the first)")
    data.add_argument("--label-column", help="column holding the labels (default: detected)")
    data.add_argument("--input-column", help="column holding the images or texts (default: detected)")

    pool = parser.add_argument_group("candidates (an index, a folder of repos, or a Hub query)")
    pool.add_argument(
        "--candidates", default="bundled", help="'bundled' (default), an index file or a folder of Hub-style repos"
    )
    pool.add_argument("--models", type=names, help="comma-separated repo ids: keep only these candidates")
    pool.add_argument("--hub-search", help="Hub query instead of --candidates: substring of the repo id")
    pool.add_argument("--hub-author", help="Hub query: user or organisation")
    pool.add_argument("--hub-pipeline-tag", help="Hub query: e.g. image-classification")
    pool.add_argument("--hub-library", help="Hub query: e.g. transformers")
    pool.add_argument(
        "--hub-limit", type=positive_int, help="Hub query: at most this many models (most downloaded first)"
    )
    pool.add_argument(
        "--local-dir",
        help="read candidates from <local-dir>/<repo id> instead of the Hub (default: the --candidates folder, if one)",
    )

    tasks = parser.add_argument_group("training tasks")
    tasks.add_argument(
        "--tasks-per-dataset", type=positive_int, default=50, help="tasks sampled per dataset (default: 50)"
    )
    tasks.add_argument("--per-class", type=positive_int, default=10, help="training examples per class (default: 10)")
    tasks.add_argument("--min-classes", type=positive_int, default=2, help="fewest classes in a task (default: 2)")
    tasks.add_argument(
        "--max-classes", type=positive_int, help="most classes in a task (default: all of the dataset's)"
    )
    tasks.add_argument(
        "--pool-per-class",
        type=positive_int,
        help="examples per class read from each dataset (default: 4 x per-class + test)",
    )
    tasks.add_argument("--seed", type=seed, default=0, help="seed of the pools and tasks (default: 0)")

    labels = parser.add_argument_group("labels")
    labels.add_argument(
        "--estimators",
        type=names,
        default="logme,nce,hscore",
        help="comma-separated estimators (default: logme,nce,hscore)",
    )
    labels.add_argument(
        "--finetune-tasks",
        type=nonnegative_int,
        default=0,
        help="fine-tune every candidate on the first N tasks of each dataset",
    )
    labels.add_argument(
        "--test-per-class", type=nonnegative_int, default=20, help="held-out examples per class (default: 20)"
    )
    labels.add_argument(
        "--finetune-steps", type=positive_int, default=30, help="AdamW steps per fine-tune (default: 30)"
    )
    labels.add_argument(
        "--finetune-lr", type=positive_number, default=1e-4, help="fine-tuning learning rate (default: 1e-4)"
    )
    labels.add_argument("--finetune-batch-size", type=positive_int, default=32, help="examples per step (default: 32)")
    labels.add_argument(
        "--finetune-seeds", type=seeds, default=(0,), help="comma-separated seeds, accuracy averaged (default: 0)"
    )
    labels.add_argument(
        "--max-length", type=positive_int, default=128, help="text: tokens per example when fine-tuning"
    )

    budget = parser.add_argument_group("budget (a later run continues)")
    budget.add_argument(
        "--max-pairs", type=nonnegative_int, help="label at most this many (model, task) pairs in this run"
    )
    budget.add_argument("--max-seconds", type=nonnegative_number, help="start no new pair after this many seconds")
    budget.add_argument("--retry-failed", action="store_true", help="label again pairs whose model failed before")

    run_group = parser.add_argument_group("running candidates")
    add_forward_arguments(run_group)
    run_group.add_argument("--image-encoder", help="general image encoder of the task tokens (default: DINOv2-small)")
    run_group.add_argument("--text-encoder", help="general text encoder of the task tokens (default: MiniLM-L6)")

    hub = parser.add_argument_group("Hub")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the records folder to this Hub dataset repo")
    hub.add_argument("--private", action="store_true", help="create the dataset repo private")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..metarecords.build import build_records
    from ..metarecords.finetune import FinetuneProtocol
    from ..metarecords.labelling import Budget
    from ..metarecords.tasks import TaskSampling
    from ..rerank.distributed import partial_state

    _check_held_out(args)
    check_output_dir(args.output, what="--output")
    if args.push_to_hub:
        check_can_push("--push-to-hub")
    fine_tuning = args.finetune_tasks > 0
    test_per_class = args.test_per_class if fine_tuning else 0
    sampling = TaskSampling(
        tasks_per_dataset=args.tasks_per_dataset,
        per_class=args.per_class,
        min_classes=args.min_classes,
        max_classes=args.max_classes,
        test_per_class=test_per_class,
        pool_per_class=args.pool_per_class or 4 * args.per_class + test_per_class,
        seed=args.seed,
    )
    protocol = None
    if fine_tuning:
        protocol = FinetuneProtocol(
            steps=args.finetune_steps,
            lr=args.finetune_lr,
            batch_size=args.finetune_batch_size,
            seeds=args.finetune_seeds,
            max_length=args.max_length,
        )
    state = partial_state()
    try:
        with _quiet_transformers():
            # Only the main process reads the candidate pool (a Hub query crawls it once): build_records pins it in the
            # manifest, which every process then plans from.
            summary = build_records(
                _candidates(args) if state.is_main_process else [],
                args.dataset,
                args.output,
                sampling=sampling,
                estimators=list(args.estimators),
                finetune=protocol,
                finetune_tasks_per_dataset=args.finetune_tasks,
                budget=Budget(max_pairs=args.max_pairs, max_seconds=args.max_seconds),
                options=forward_options(args),
                text_encoder=args.text_encoder,
                image_encoder=args.image_encoder,
                split=args.split,
                label_column=args.label_column,
                input_column=args.input_column,
                retry_failed=args.retry_failed,
            )
        if state.is_main_process:
            _report(summary)
            if args.push_to_hub:
                from ..metarecords.hub import push_meta_records

                print(f"pushed to {push_meta_records(args.output, args.push_to_hub, private=args.private)}")
        state.wait_for_everyone()
    finally:
        # Leave the process group explicitly (see `hf-spider rerank`): a gloo process that exits with its group open
        # can abort at shutdown while its peer is still writing.
        state.destroy_process_group()
    return 0


def _check_held_out(args: argparse.Namespace) -> None:
    if args.finetune_tasks > 0 and args.test_per_class < 1:
        raise InvalidDatasetError("fine-tuning measures accuracy on held-out examples; pass --test-per-class >= 1")


def _candidates(args: argparse.Namespace) -> list[Any]:
    """The pool: a Hub query (crawled into ``<output>/candidates.jsonl``, SHAs included) or ``--candidates``."""
    from ..ranking import load_candidates

    query = {
        "search": args.hub_search,
        "author": args.hub_author,
        "pipeline_tag": args.hub_pipeline_tag,
        "library": args.hub_library,
    }
    if any(query.values()):
        from ..hub.crawl import Selection, crawl
        from ..hub.index import read_index

        index = args.output / "candidates.jsonl"
        crawl(index, Selection(**query, limit=args.hub_limit), with_config=True)
        pool = [r for r in read_index(index) if r.error is None]
    else:
        pool = load_candidates(args.candidates)
    if args.models:
        wanted = list(args.models)
        by_id = {r.repo_id: r for r in pool}
        unknown = [m for m in wanted if m not in by_id]
        if unknown:
            raise InvalidIndexError(f"--models names {', '.join(unknown)}, not in the candidate pool; check the ids")
        pool = [by_id[m] for m in wanted]
    if not pool:
        raise InvalidIndexError("the candidate pool is empty; pass --candidates or a Hub query that finds models")
    return pool


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Fine-tunes draw new heads on purpose: transformers' per-load warnings and bars would drown our one bar."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()


def _report(summary: Any) -> None:
    rate = f" ({summary.pairs_per_second:.2f} pairs/s)" if summary.labelled else ""
    failed = f", {summary.failed} failed (recorded with their reason)" if summary.failed else ""
    print(
        f"{summary.folder}: labelled {summary.labelled} pairs in {summary.seconds:.1f} s{rate} over "
        f"{summary.processes} process(es){failed}; {summary.recorded} of {summary.total_pairs} pairs recorded"
    )
    if summary.remaining:
        print(f"{summary.remaining} pairs remain: run the same command again to continue", file=sys.stderr)
