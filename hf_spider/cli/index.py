"""``hf-spider index stats``: what a model index holds (per pipeline tag, library, missing field, error kind)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..hub.index import read_index
from ..hub.snapshot import CrawlJournal, index_stats, load_with_journal


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("index", help="inspect a model index", description="Inspect a model index.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = actions.add_parser(
        "stats",
        help="counts per pipeline tag, library, missing field and error kind",
        description="Counts per pipeline tag, library, missing field and error kind. A crawl in progress (or cut "
        "off) is included through its journal.",
    )
    stats.add_argument("index", type=Path, help="index file (.parquet or .jsonl)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    if not args.index.is_file() and not CrawlJournal(args.index).path.is_file():
        read_index(args.index)  # raises the one-line "does not exist" error
    stats = index_stats(load_with_journal(args.index).values())
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2, sort_keys=True))
        return 0
    print(f"{args.index}: {stats.total} models, {stats.with_error} with an error")
    for title, counts in (
        ("pipeline tag", stats.pipeline_tags),
        ("library", stats.libraries),
        ("missing field", stats.missing_fields),
        ("error kind", stats.errors),
    ):
        print()
        print(_table(title, counts))
    return 0


def _table(title: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"{title}: none"
    width = max(len(title), *(len(k) for k in counts))
    lines = [f"{title:<{width}}  models", f"{'-' * width}  ------"]
    lines += [f"{key:<{width}}  {n:>6}" for key, n in counts.items()]
    return "\n".join(lines)
