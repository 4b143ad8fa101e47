"""Printing or writing a shortlist, the same way for every command that produces one.

The format is ``--format`` when given, else the ``--output`` file's suffix (``.json``, ``.md``; anything else is the
text table). A ``--format`` that contradicts a known suffix (``--format table --output all.json``) is refused rather
than writing a ``.json`` file that holds a table. ``--output -`` is stdout; any other ``--output`` must be a regular
file or a new path (:func:`~hf_spider.hub.output_paths.check_output_file`), checked before the work starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import InvalidOutputError
from ..hub.output_paths import atomic_write, check_output_file
from ..outputs.shortlist import Shortlist
from ._types import output_file

FORMATS = ("table", "json", "markdown")
#: File suffixes that name a format; any other suffix (``.txt``, none) writes the text table unless ``--format`` says.
SUFFIX_FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown"}
#: The suffix an error message suggests for each format.
FORMAT_SUFFIXES = {"table": ".txt", "json": ".json", "markdown": ".md"}


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The "output" group of a command that prints a shortlist (``rank``, ``rerank``): ``--top-k``, and ``--format``
    and ``--output`` with the defaults :func:`emit_shortlist` resolves."""
    group = parser.add_argument_group("output")
    group.add_argument("--top-k", type=int, default=10, help="how many models to list (default: 10; 0 = all)")
    group.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the --output suffix, .json or .md, else table)",
    )
    group.add_argument(
        "--output",
        type=output_file,
        help="write the shortlist to this file (- for stdout, the default); a symbolic link, device, FIFO or folder is "
        "refused",
    )
    group.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="let --output be a symbolic link and write through it (default: refuse it, as an atomic write would "
        "replace the link)",
    )


def output_format(fmt: str | None, output: Path | None) -> str:
    """The format to write: ``fmt`` when given, else the one ``output``'s suffix names, else ``"table"``.

    Raises:
        InvalidOutputError: ``fmt`` and a known suffix of ``output`` disagree.
    """
    implied = SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None else None
    if fmt is None:
        return implied or "table"
    if implied is not None and implied != fmt:
        raise InvalidOutputError(
            f"--output '{output}' names a {implied} file but --format is {fmt}; "
            f"drop --format (the suffix decides) or write to a {FORMAT_SUFFIXES[fmt]} file"
        )
    return fmt


def checked_output(
    fmt: str | None,
    output: Path | None,
    *,
    follow_symlinks: bool = False,
    inputs: Mapping[str, object] | None = None,
) -> str:
    """:func:`output_format`, once ``output`` is known to be writable and to be none of the command's ``inputs``
    (flag -> the path it was given): called before any work, so a bad ``--output`` fails in a second rather than
    after the ranking, and ``rank --dataset data.csv --output data.csv`` never replaces the data with its shortlist.

    Raises:
        InvalidOutputError: see :func:`output_format` and :func:`~hf_spider.hub.output_paths.check_output_file`;
            ``output`` is one of ``inputs``.
    """
    if output is not None and not _is_stdout(output):
        check_output_file(output, what="--output", follow_symlinks=follow_symlinks, offers_follow=True)
        for flag, given in (inputs or {}).items():
            if isinstance(given, (str, Path)) and _same_file(output, Path(given)):
                raise InvalidOutputError(
                    f"--output '{output}' is the {flag} input; write the shortlist to another file"
                )
    return output_format(fmt, output)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.is_file() and b.is_file() and a.samefile(b)
    except OSError:
        return False


def emit_shortlist(
    shortlist: Shortlist, fmt: str | None, output: Path | None, *, follow_symlinks: bool = False
) -> None:
    """Print ``shortlist`` to stdout (``output`` ``None`` or ``-``), or write it atomically to ``output`` (never half
    a file, never over anything but a regular file).

    Args:
        fmt: ``"table"``, ``"json"`` or ``"markdown"``; ``None`` picks it from ``output``'s suffix (see
            :func:`output_format`).
        follow_symlinks: write through ``output`` when it is a symbolic link (else it is refused).
    """
    fmt = checked_output(fmt, output, follow_symlinks=follow_symlinks)
    text = {"table": shortlist.to_table, "json": shortlist.to_json, "markdown": shortlist.to_markdown}[fmt]()
    if output is None or _is_stdout(output):
        print(text)
        return
    with atomic_write(output, follow_symlinks=follow_symlinks) as f:
        f.write(text if text.endswith("\n") else text + "\n")
    print(f"wrote {len(shortlist)} ranked models to {output} ({fmt})", file=sys.stderr)


def _is_stdout(output: Path | None) -> bool:
    return output is None or str(output) == "-"
