"""``hf-spider crawl``: Hub models (or a folder of Hub-style repos) into a resumable model index."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..hub.crawl import DEFAULT_REPO_BUDGET, Selection, crawl, crawl_dir
from ..hub.push import check_can_push
from ..hub.snapshot import check_crawl_outputs
from ._types import nonnegative_int, nonnegative_number, output_file, positive_int, positive_number


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crawl",
        help="crawl Hub models into a model index",
        description="List Hub models (one request per page) and optionally fetch config.json and README.md into an "
        "index keyed by repo id and sha. Re-running fetches only changed models; a killed crawl resumes. With "
        "HF_HUB_OFFLINE=1 nothing is requested: the last index and the local HF cache are used.",
    )
    parser.add_argument(
        "--index", type=output_file, required=True, help="index file to create or update (.parquet/.jsonl)"
    )
    source = parser.add_argument_group("what to crawl")
    source.add_argument("--pipeline-tag", help="e.g. image-classification")
    source.add_argument("--library", help="e.g. transformers, timm")
    source.add_argument("--search", help="substring of the repo id")
    source.add_argument("--author", help="user or organisation")
    source.add_argument("--models", nargs="+", metavar="REPO_ID", help="explicit repo ids instead of a listing")
    source.add_argument("--from-dir", type=Path, help="index a folder of model repos laid out as on the Hub")
    source.add_argument(
        "--sort", choices=("downloads", "likes", "trending", "last_modified", "created_at"), default="downloads"
    )
    source.add_argument("--limit", type=nonnegative_int, help="at most this many models")
    fetch = parser.add_argument_group("what to fetch and how")
    fetch.add_argument("--with-config", action="store_true", help="fetch config.json (label names, input size)")
    fetch.add_argument("--with-card", action="store_true", help="fetch README.md (card text, eval results)")
    fetch.add_argument(
        "--with-weights-digest",
        action="store_true",
        help="list each repo's files (one more request) for its weights' sha256, so that copies of one checkpoint "
        "under unrelated names rank as one",
    )
    fetch.add_argument("--workers", type=positive_int, default=8, help="concurrent fetches (default 8)")
    fetch.add_argument(
        "--rate",
        type=request_rate,
        help=f"at most this many requests per second, at least 1/{DEFAULT_REPO_BUDGET:g} (default: no cap)",
    )
    fetch.add_argument(
        "--timeout", type=positive_number, default=10.0, help="seconds before a silent request is retried"
    )
    # huggingface_hub retries each listing page itself (http_backoff: 5 retries, 1 to 8 s waits) and list_models
    # takes no setting for it, so these two govern the per-model requests and the restarts of the listing only.
    fetch.add_argument(
        "--max-retries",
        type=nonnegative_int,
        default=5,
        help="retries of each model's requests on 429 / 5xx / timeouts, and restarts of the listing after "
        "huggingface_hub's own retries of a page (5, over about 23 s; not configurable) ran out (default 5)",
    )
    fetch.add_argument(
        "--backoff",
        type=nonnegative_number,
        default=1.0,
        help="first retry wait in seconds, doubled each time (a listing page's own retries wait 1 to 8 s)",
    )
    fetch.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    parser.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        help="also push the index to this dataset repo, for `rank --candidates hf://datasets/ORG/NAME` (one commit, "
        "none when unchanged; needs a write token)",
    )
    parser.set_defaults(func=run)


def request_rate(text: str) -> float:
    """A ``--rate`` the crawler can keep: at least one request per model time budget. A lower one makes every model
    wait past its budget (``1e-300`` used to fail every model with an ``OverflowError`` from the wait itself)."""
    rate = positive_number(text)
    if rate < 1 / DEFAULT_REPO_BUDGET:
        raise argparse.ArgumentTypeError(
            f"must be at least 1/{DEFAULT_REPO_BUDGET:g} = {1 / DEFAULT_REPO_BUDGET:.4g} (one request per "
            f"{DEFAULT_REPO_BUDGET:g} s, the time one model may take), got {text}"
        )
    return rate


def run(args: argparse.Namespace) -> int:
    if args.push_to_hub:
        check_can_push("--push-to-hub")
    # A folder, a device, a symlink (the index's or its journal's) or a .csv is refused before any request.
    check_crawl_outputs(args.index, what="--index")
    if args.from_dir is not None:
        report = crawl_dir(args.from_dir, args.index)
    else:
        selection = Selection(
            pipeline_tag=args.pipeline_tag,
            library=args.library,
            search=args.search,
            author=args.author,
            models=tuple(args.models) if args.models else None,
            sort=args.sort,
            limit=args.limit,
        )
        report = crawl(
            args.index,
            selection,
            endpoint=args.endpoint,
            with_config=args.with_config,
            with_card=args.with_card,
            with_weights_digest=args.with_weights_digest,
            workers=args.workers,
            requests_per_second=args.rate,
            timeout=args.timeout,
            max_retries=args.max_retries,
            backoff=args.backoff,
        )
    mode = " (offline: nothing requested)" if report.offline else ""
    print(
        f"{report.index_path}: {report.total} models; this run listed {report.listed}, fetched {report.fetched}, "
        f"kept {report.unchanged} unchanged in {report.seconds:.1f}s{mode}"
    )
    if report.errors:
        print("errors: " + ", ".join(f"{kind} {n}" for kind, n in sorted(report.errors.items())))
    if args.push_to_hub:
        from ..hub.live import push_index

        print(f"pushed to {push_index(report.index_path, args.push_to_hub)}")
    return 0
