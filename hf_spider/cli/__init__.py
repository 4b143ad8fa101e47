"""``hf-spider``: a thin argparse layer over the library; one module per sub-command.

Every sub-command module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``(args) -> int``. Errors of ours (:class:`~hf_spider.errors.HfSpiderError`), usage errors and what the operating
system refuses (a file that cannot be read, a full disk under stdout) become one line on stderr and exit code 2;
``--verbose`` (before or after the sub-command) shows the traceback instead. Ctrl-C, even during the imports of the
first second, exits with 130 and one line; a reader that closes the pipe (``| head``) ends the command silently, as
Unix tools do.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from ..errors import HfSpiderError

#: Sub-command modules of this package, in the order ``--help`` lists them.
COMMANDS = ("rank", "rerank", "evaluate", "crawl", "index", "train_scorer", "build_records")

EXIT_USAGE = 2
#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130
#: Exit status of a command whose reader closed the pipe (128 + SIGPIPE), as a shell reports it.
EXIT_BROKEN_PIPE = 141
VERBOSE_HELP = "log progress and show tracebacks on errors"


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage block is what ``--help`` is for), exit code 2.

    ``commands`` holds the sub-command parsers, so an argument the sub-command does not know is reported by it
    (``see 'hf-spider rank --help'``), not by the top level.
    """

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser(command: str | None = None) -> OneLineParser:
    """The parser of every sub-command, or of ``command`` alone: a sub-command's module imports what it needs (the
    scorer, pandas, the Hub client), so ``hf-spider rank`` never pays for the others' imports."""
    parser = OneLineParser(
        prog="hf-spider", description="Rank pre-trained Hub models for your dataset without fine-tuning them all."
    )
    parser.add_argument("--version", action="version", version=f"hf-spider {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [command] if command in COMMANDS else COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    parser.commands = dict(subparsers.choices)
    for subparser in subparsers.choices.values():
        # Global flags work after the sub-command too (`hf-spider rank ... -v`). SUPPRESS: a sub-command that is
        # not given the flag leaves the top-level value alone instead of resetting it to False.
        subparser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (0, 2 for bad input, 130 on Ctrl-C, 141 on a closed pipe)."""
    command = "hf-spider"
    verbose = False
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        named = next((a.replace("-", "_") for a in argv if not a.startswith("-")), None)
        parser = build_parser(named)  # imports the command's module: Ctrl-C can land here
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
        command, verbose = f"hf-spider {args.command}", args.verbose
        code = _run(args)
        sys.stdout.flush()  # a full disk under stdout shows here, while the error can still be reported
        return code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except (HfSpiderError, OSError) as exc:
        if verbose:
            raise
        print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
        _flush_or_discard_stdout()
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        # torchvision built for another torch (the Quickstart's CPU install) warns on import that its C image library
        # is missing; hf-spider never uses it, so the warning is noise in every command's output.
        warnings.filterwarnings("ignore", message="Failed to load image Python extension", category=UserWarning)
    return int(args.func(args))


def _one_line(exc: BaseException) -> str:
    """The error as one line: ours already are; an operating-system error names its file and what to check."""
    if isinstance(exc, HfSpiderError) or not isinstance(exc, OSError):
        return " ".join(str(exc).split())
    if exc.filename:
        return f"'{exc.filename}': {exc.strerror or exc}; check the path and its permissions"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device the output goes to; free some space or write elsewhere"
    return str(exc.strerror or exc)


def _flush_or_discard_stdout() -> None:
    """Write out what stdout still buffers; if stdout is what failed (a full disk), drop it instead, so the
    interpreter's own flush at exit does not fail again with a traceback."""
    try:
        sys.stdout.flush()
    except OSError:
        _discard_stdout()


def _discard_stdout() -> None:
    """Point stdout at /dev/null so what is still buffered is dropped, not written again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a file (tests, notebooks)
        pass
