"""``hf-spider``: a thin argparse layer over the library; one module per sub-command.

Every sub-command module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``(args) -> int``. Errors of ours (:class:`~hf_spider.errors.HfSpiderError`) become one line on stderr and exit code 2;
``--verbose`` (before or after the sub-command) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from .._version import __version__
from ..errors import HfSpiderError

#: Sub-command modules of this package, in the order ``--help`` lists them.
COMMANDS = ("rank", "rerank", "evaluate", "crawl", "index", "train_scorer", "build_records")

EXIT_USAGE = 2
VERBOSE_HELP = "log progress and show tracebacks on errors"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-spider", description="Rank pre-trained Hub models for your dataset without fine-tuning them all."
    )
    parser.add_argument("--version", action="version", version=f"hf-spider {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    for subparser in subparsers.choices.values():
        # Global flags work after the sub-command too (`hf-spider rank ... -v`). SUPPRESS: a sub-command that is
        # not given the flag leaves the top-level value alone instead of resetting it to False.
        subparser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        # torchvision built for another torch (the Quickstart's CPU install) warns on import that its C image library
        # is missing; hf-spider never uses it, so the warning is noise in every command's output.
        warnings.filterwarnings("ignore", message="Failed to load image Python extension", category=UserWarning)
    try:
        return int(args.func(args))
    except (HfSpiderError, FileNotFoundError) as exc:
        if args.verbose:
            raise
        print(f"hf-spider {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hf-spider: interrupted", file=sys.stderr)
        return 130
