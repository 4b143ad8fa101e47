"""Printing or writing a shortlist, the same way for every command that produces one."""

from __future__ import annotations

import sys
from pathlib import Path

from ..hub.index import atomic_write
from ..outputs.shortlist import Shortlist

FORMATS = ("table", "json", "markdown")


def emit_shortlist(shortlist: Shortlist, fmt: str, output: Path | None) -> None:
    """Print ``shortlist`` in ``fmt`` to stdout, or write it atomically to ``output`` (never half a file)."""
    text = {"table": shortlist.to_table, "json": shortlist.to_json, "markdown": shortlist.to_markdown}[fmt]()
    if output is None:
        print(text)
        return
    with atomic_write(output) as f:
        f.write(text if text.endswith("\n") else text + "\n")
    print(f"wrote {len(shortlist)} ranked models to {output}", file=sys.stderr)
