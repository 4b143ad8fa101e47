"""``hf-spider rank``: shortlist the candidate models for a dataset (or for label names, or the task in words)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InvalidDatasetError
from ..outputs.collections import add_push_arguments, check_push_args, push_from_args
from ..rankers import DEFAULT_RANKER, RANKERS
from ._forward import add_rerank_arguments, candidates_folder, rerank_from_args
from ._output import add_output_arguments, checked_output, emit_shortlist
from ._types import iso_date, names, nonnegative_number


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rank",
        help="rank candidate models for a dataset",
        description="Rank candidate models for a dataset (or label names, or the task in words: --task) without "
        "fine-tuning any of them. Models with transfer records (MTEB's encoders) are ranked for the task from every "
        "input given (docs/task_aware.md).",
    )
    task = parser.add_argument_group("task (--dataset or --labels, and/or --task; every one given counts)")
    source = task.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="image folder, CSV/JSON/Parquet file, save_to_disk folder or Hub dataset id")
    source.add_argument("--labels", help="comma-separated class names, when no samples are at hand")
    task.add_argument(
        "--task",
        metavar="TEXT",
        help='what the task is, in words ("route customer-support emails to the right team"): ranks models with '
        "records (MTEB's encoders) for it; alone it needs --modality, with --labels or --dataset all count",
    )
    task.add_argument("--modality", choices=("image", "text"), help="modality of a --labels or --task-only task")
    task.add_argument("--name", help="task name shown in the shortlist (default: the dataset name)")
    task.add_argument("--split", help="split to use (default: train, else the first)")
    task.add_argument("--config", help="configuration of a Hub dataset")
    task.add_argument("--label-column", help="column holding the labels (default: detected)")
    task.add_argument("--input-column", help="column holding the images or texts (default: detected)")

    pool = parser.add_argument_group("candidates")
    pool.add_argument(
        "--candidates",
        default="bundled",
        help="'bundled' (default: the embedded pool), 'hub' (the live Hub's listing for the task's modality, cached), "
        "hf://datasets/ORG/NAME[@REVISION] (an index `hf-spider crawl --push-to-hub` wrote), an index file "
        "(.parquet/.jsonl) or a folder of Hub-style model repos",
    )
    pool.add_argument(
        "--models", type=names, help="comma-separated repo ids to rank (default: every candidate of the modality)"
    )
    pool.add_argument(
        "--max-params",
        type=nonnegative_number,
        help="drop candidates with more parameters (e.g. 1e8); one of unknown size is kept and noted 'size unknown' "
        "unless --drop-unknown",
    )
    pool.add_argument(
        "--license",
        action="append",
        help="keep only this license, case-insensitive (repeatable); one whose license is not recorded (the bundled "
        "pool's TransferGraph models and a few others) is kept and noted 'license unknown' unless --drop-unknown",
    )
    pool.add_argument(
        "--library",
        action="append",
        help="keep only this library (repeatable); an unrecorded one is kept and noted unless --drop-unknown",
    )
    pool.add_argument(
        "--created-after",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="keep only models created on the Hub on or after this day (a recency cut); one whose creation date is "
        "not recorded (every model of the bundled pool: use --candidates hub) is kept and noted unless --drop-unknown",
    )
    pool.add_argument(
        "--drop-unknown",
        action="store_true",
        help="drop, instead of keeping and noting, candidates whose size / license / library a filter cannot check, "
        "and candidates whose repo could not be read (else ranked last, with the reason)",
    )
    pool.add_argument(
        "--drop-test-repos",
        action="store_true",
        help="drop, instead of keeping and noting, repos whose name or tags say test or random weights "
        "(tiny-random, test, dummy)",
    )
    pool.add_argument("--include-gated", action="store_true", help="also rank gated models")

    parser.add_argument(
        "--ranker",
        choices=sorted(RANKERS),
        default=DEFAULT_RANKER,
        help=f"how to score candidates (default: {DEFAULT_RANKER}, the Model Spider scorer)",
    )
    parser.add_argument(
        "--scorer",
        metavar="PATH_OR_REPO_ID",
        help="a trained scorer (a `hf-spider train-scorer` folder or its Hub repo) instead of --ranker; one trained "
        "with class prototypes reads the dataset's samples",
    )
    add_rerank_arguments(parser)
    add_output_arguments(parser)
    add_push_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.utils import tqdm

    from ..hub.live import HubPool
    from ..rankers import get_ranker
    from ..ranking import CandidateFilter, load_candidates, rank, select_candidates, task_reading
    from ..scorer.inference import load_spider_ranker

    if args.top_k < 0:
        raise InvalidDatasetError(f"--top-k must be >= 0, got {args.top_k}; pass 0 for all candidates")
    check_push_args(args)
    inputs = {"--dataset": args.dataset, "--candidates": args.candidates}
    checked_output(args.format, args.output, follow_symlinks=args.follow_symlinks, inputs=inputs)  # fails first
    with tqdm(total=3, desc="hf-spider rank", unit="step", name="hf_spider.rank", file=sys.stderr) as progress:
        progress.set_postfix_str("reading the task")
        ranker = load_spider_ranker(args.scorer) if args.scorer else get_ranker(args.ranker)
        task = _read_task(args, **task_reading(ranker))
        tokens = task.tokens
        read = tokens.description
        if args.dataset is not None and args.modality is not None and read.modality != args.modality:
            raise InvalidDatasetError(
                f"--modality {args.modality} contradicts the dataset, whose column '{read.input_column}' holds "
                f"{read.modality}; leave out --modality, or name the input column with --input-column"
            )
        progress.update()
        progress.set_postfix_str("loading candidates")
        candidate_filter = CandidateFilter(
            max_parameters=int(args.max_params) if args.max_params is not None else None,
            licenses=frozenset(args.license) if args.license else None,
            libraries=frozenset(args.library) if args.library else None,
            include_gated=args.include_gated,
            drop_unknown=args.drop_unknown,
            drop_test_repos=args.drop_test_repos,
            created_after=args.created_after,
        )
        candidates = select_candidates(
            load_candidates(args.candidates, modality=tokens.description.modality),
            modality=tokens.description.modality,
            model_ids=list(args.models) if args.models else None,
            candidate_filter=candidate_filter,
        )
        progress.update()
        progress.set_postfix_str(f"scoring {len(candidates)} candidates")
        shortlist = rank(
            tokens,
            candidates,
            ranker=ranker,
            top_k=args.top_k or None,
            candidate_filter=candidate_filter,
            local_dir=candidates_folder(args),  # a folder pool is read in place, as stage two reads it
        )
        if args.candidates == "hub":  # the shortlisted models' config and card, fetched now, may move them
            candidates = HubPool(tokens.description.modality).with_details(candidates, shortlist.model_ids)
            shortlist = rank(
                tokens, candidates, ranker=ranker, top_k=args.top_k or None, candidate_filter=candidate_filter
            )
        progress.update()
    shortlist = rerank_from_args(shortlist, task.source, candidates, args)
    emit_shortlist(shortlist, args.format, args.output, follow_symlinks=args.follow_symlinks)
    url = push_from_args(shortlist, args)
    if url is not None:
        print(f"pushed to {url}", file=sys.stderr)
    return 0


def _read_task(args: argparse.Namespace, **reading: Any) -> Any:
    from ..ranking import read_task
    from ..tokens.task import TaskDescription

    if args.task is not None and not args.task.strip():
        raise InvalidDatasetError("--task is empty; describe the task in words or leave --task out")
    if args.labels is not None:
        labels = _split_list(args.labels) or []
        if args.modality is None:
            raise InvalidDatasetError("--labels needs --modality image or --modality text")
        if len(set(labels)) < 2:
            raise InvalidDatasetError(f"--labels names {len(set(labels))} distinct class(es); pass at least 2")
        task: Any = TaskDescription(name=args.name or "labels", modality=args.modality, label_names=tuple(labels))
    elif args.dataset is not None:
        task = args.dataset
    elif args.task is not None:
        if args.modality is None:
            raise InvalidDatasetError("--task without --dataset or --labels needs --modality image or --modality text")
        task = TaskDescription(name=args.name or "task", modality=args.modality, label_names=())
    else:
        raise InvalidDatasetError("name the task: pass --dataset, --labels or --task (see hf-spider rank --help)")
    return read_task(
        task,
        split=args.split,
        config=args.config,
        label_column=args.label_column,
        input_column=args.input_column,
        name=args.name,
        task_text=args.task.strip() if args.task else None,
        **reading,
    )


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]
