"""The options of every command that runs candidates (``rank``, ``rerank``, ``build-records``): declared and read in
one place."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..rerank.budget import DEFAULT_BUDGET_SECONDS
from ._types import positive_int, positive_number


def add_forward_arguments(group: Any) -> None:
    """``--batch-size``, ``--device-map``, ``--trust-remote-code`` and ``--allow-pickle`` on an argparse group."""
    group.add_argument("--batch-size", type=positive_int, default=32, help="samples per forward pass (default: 32)")
    group.add_argument("--device-map", help="e.g. 'auto' to spread a large candidate over the visible devices")
    group.add_argument("--trust-remote-code", action="store_true", help="run repo code of configs with auto_map")
    group.add_argument("--allow-pickle", action="store_true", help="load weights that exist only as pickle files")


def forward_options(args: argparse.Namespace) -> Any:
    """The :class:`~hf_spider.rerank.options.ForwardOptions` those arguments ask for; candidates are read from
    ``--local-dir``, else from a ``--candidates`` folder."""
    from ..rerank.options import ForwardOptions

    return ForwardOptions(
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
        batch_size=args.batch_size,
        device_map=args.device_map,
        local_dir=args.local_dir or candidates_folder(args),
    )


def candidates_folder(args: argparse.Namespace) -> str | None:
    """``--candidates`` when it is a folder of Hub-style repos: their weights are read from it in place."""
    pool = getattr(args, "candidates", None)
    return str(pool) if pool not in (None, "bundled") and Path(str(pool)).is_dir() else None


def add_rerank_arguments(parser: Any) -> None:
    """``--rerank-budget`` and ``--no-rerank``: how ``rank --dataset`` runs stage two by itself."""
    group = parser.add_argument_group("re-ranking (with --dataset: the top candidates are run on its samples)")
    group.add_argument(
        "--rerank-budget",
        type=positive_number,
        default=DEFAULT_BUDGET_SECONDS,
        metavar="SECONDS",
        help=f"wall seconds for re-ranking by forward passes (default: {DEFAULT_BUDGET_SECONDS:g}, sized for a CPU). "
        "Successive halving over the top 8: all on 2 samples per class, the better half on 5, the best 2 on 10; a "
        "candidate expected to end past the budget is not started. Features are cached, so a rerun is faster",
    )
    group.add_argument("--no-rerank", action="store_true", help="stage one alone: run no candidate")


def rerank_from_args(shortlist: Any, source: Any, candidates: Sequence[Any], args: argparse.Namespace) -> Any:
    """Stage two as ``rank`` runs it: on the dataset's samples within ``--rerank-budget``, unless ``--no-rerank``
    or the task has no samples (``--labels``); candidates from a ``--candidates`` folder are read from it."""
    if source is None or args.no_rerank:
        return shortlist
    from ..rerank.budget import rerank_within_budget
    from ..rerank.options import ForwardOptions

    options = ForwardOptions(local_dir=candidates_folder(args))
    with library_noise_to_log(getattr(args, "verbose", False)):
        return rerank_within_budget(shortlist, source, candidates, budget_seconds=args.rerank_budget, options=options)


@contextlib.contextmanager
def library_noise_to_log(verbose: bool) -> Iterator[None]:
    """Route Python warnings to the log and quiet transformers' own logger: shown with ``--verbose`` only."""
    from transformers.utils import logging as transformers_logging

    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    level = warnings_logger.level
    verbosity = transformers_logging.get_verbosity()
    warnings_logger.setLevel(logging.INFO if verbose else logging.ERROR)
    if not verbose:
        transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.captureWarnings(False)
        warnings_logger.setLevel(level)
        transformers_logging.set_verbosity(verbosity)
