"""Printing or writing a shortlist, the same way for every command that produces one.

The format is ``--format`` when given, else the ``--output`` file's suffix (``.json``, ``.md``; anything else is the
text table). A ``--format`` that contradicts a known suffix (``--format table --output all.json``) is refused rather
than writing a ``.json`` file that holds a table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidOutputError
from ..hub.index import atomic_write
from ..outputs.shortlist import Shortlist

FORMATS = ("table", "json", "markdown")
#: File suffixes that name a format; any other suffix (``.txt``, none) writes the text table unless ``--format`` says.
SUFFIX_FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown"}
#: The suffix an error message suggests for each format.
FORMAT_SUFFIXES = {"table": ".txt", "json": ".json", "markdown": ".md"}


def add_output_arguments(group: Any) -> None:
    """``--format`` and ``--output`` on an argparse group, with the defaults :func:`emit_shortlist` resolves."""
    group.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the --output suffix, .json or .md, else table)",
    )
    group.add_argument("--output", type=Path, help="write the shortlist to this file instead of stdout")


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


def emit_shortlist(shortlist: Shortlist, fmt: str | None, output: Path | None) -> None:
    """Print ``shortlist`` to stdout, or write it atomically to ``output`` (never half a file).

    Args:
        fmt: ``"table"``, ``"json"`` or ``"markdown"``; ``None`` picks it from ``output``'s suffix (see
            :func:`output_format`).
    """
    fmt = output_format(fmt, output)
    text = {"table": shortlist.to_table, "json": shortlist.to_json, "markdown": shortlist.to_markdown}[fmt]()
    if output is None:
        print(text)
        return
    with atomic_write(output) as f:
        f.write(text if text.endswith("\n") else text + "\n")
    print(f"wrote {len(shortlist)} ranked models to {output} ({fmt})", file=sys.stderr)
