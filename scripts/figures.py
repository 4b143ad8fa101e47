"""Tie every reported figure to the results file that holds it: check the documents, or rewrite their figures.

A figure in a document is the number written right before a marker that names its results file and key::

    hf-spider reaches 0.711<!-- results/transfergraph image.weighted_mean.hf_spider --> weighted tau

The source is a JSON file under ``benchmarks/`` without its suffix (``results/transfergraph`` is
``benchmarks/results/transfergraph.json``, ``zoo/results`` is ``benchmarks/zoo/results.json``); the key is a dotted
path into it. Options after the key: ``%`` (the value is a share, written as a percentage), ``-KEY`` / ``/KEY``
(the written figure is the difference / the ratio of the two keys). The written number must be the value rounded to
the digits it is written with, so a figure edited by hand, or a results file re-run without its documents, fails the
check.

    python scripts/figures.py            # check every document; exit 1 listing each figure that differs
    python scripts/figures.py --write    # rewrite each figure from its results file (same number of digits)

``tests/test_figures.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The documents whose figures are tied to results files (the scorer's card also lives in its ``config.json``).
DOCUMENTS = (
    "README.md",
    "CHANGELOG.md",
    "docs/*.md",
    "benchmarks/zoo/README.md",
    "hf_spider/data/scorer/README.md",
    "hf_spider/data/scorer/config.json",
)
MARKER = re.compile(
    r"(?P<number>[-+]?\d[\d,]*(?:\.\d+)?)(?P<unit>\s?%)?<!-- (?P<source>[\w/]+) (?P<key>[^\s]+)"
    r"(?P<options>(?: [^\s]+)*?) -->"
)


@dataclass(frozen=True)
class Figure:
    """One marked figure: where it is, what is written, and what its results file says."""

    document: str
    line: int
    written: str
    expected: str
    marker: str

    @property
    def ok(self) -> bool:
        return self.written == self.expected


def documents(root: Path = REPO) -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def load(source: str, root: Path, cache: dict[str, Any]) -> Any:
    if source not in cache:
        path = root / "benchmarks" / f"{source}.json"
        if not path.is_file():
            raise SystemExit(f"a figure names {source}, but {path.relative_to(root)} does not exist")
        cache[source] = json.loads(path.read_text(encoding="utf-8"))
    return cache[source]


def lookup(data: Any, key: str) -> float:
    value = data
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return float(value)


def render(written: str, value: float) -> str:
    """``value`` written with the digits, sign convention and thousands separators of ``written``."""
    digits = len(written.split(".", 1)[1]) if "." in written else 0
    quantum = Decimal(1).scaleb(-digits)
    rounded = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    text = f"{rounded:,.{digits}f}" if "," in written else f"{rounded:.{digits}f}"
    if text in (f"-{0:.{digits}f}",):  # -0.000 reads as 0.000
        text = text[1:]
    if written.startswith("+") and not text.startswith("-"):
        text = "+" + text
    return text


def value_of(match: re.Match[str], where: str, root: Path, cache: dict[str, Any]) -> float:
    """The value a marker names, with its options applied."""
    data = load(match["source"], root, cache)
    try:
        value = lookup(data, match["key"])
        for option in match["options"].split():
            if option == "%":
                value *= 100.0
            elif option.startswith("-"):
                value -= lookup(data, option[1:])
            elif option.startswith("/"):
                value /= lookup(data, option[1:])
            else:
                raise KeyError(option)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SystemExit(f"{where}: no value at {match['source']} {match['key']}{match['options']} ({exc!r})") from exc
    return value


def figures(root: Path = REPO) -> list[Figure]:
    """Every marked figure of every document, with what its results file says it must read."""
    cache: dict[str, Any] = {}
    out = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        for match in MARKER.finditer(text):
            where = f"{path.relative_to(root)}:{text.count(chr(10), 0, match.start()) + 1}"
            value = value_of(match, where, root, cache)
            out.append(
                Figure(
                    document=str(path.relative_to(root)),
                    line=text.count("\n", 0, match.start()) + 1,
                    written=match["number"],
                    expected=render(match["number"], value),
                    marker=match.group(0)[len(match["number"]) :],
                )
            )
    return out


def write(root: Path = REPO) -> int:
    """Rewrite every marked figure from its results file; returns how many changed."""
    changed = 0
    cache: dict[str, Any] = {}
    for path in documents(root):
        text = path.read_text(encoding="utf-8")

        def replace(match: re.Match[str], path: Path = path) -> str:
            nonlocal changed
            new = render(match["number"], value_of(match, str(path.relative_to(root)), root, cache))
            changed += new != match["number"]
            return new + match.group(0)[len(match["number"]) :]

        new_text = MARKER.sub(replace, text)
        if new_text != text:
            path.write_text(new_text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the figures from their results files")
    args = parser.parse_args(argv)
    if args.write:
        print(f"{write()} figure(s) rewritten")
        return 0
    found = figures()
    wrong = [f for f in found if not f.ok]
    for f in wrong:
        print(f"{f.document}:{f.line}: {f.written} should read {f.expected} ({f.marker.strip()})")
    print(f"{len(found)} figures checked, {len(wrong)} differ from their results files")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
