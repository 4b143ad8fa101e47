"""argparse ``type=`` functions: a value that cannot be right fails while the command line is read, in one line
(:class:`~hf_spider.cli.OneLineParser`), before any work, instead of as a library error after it."""

from __future__ import annotations

import argparse
import math
import os
from datetime import date
from pathlib import Path

from ..constants import MAX_SEED


def positive_int(text: str) -> int:
    """A whole number >= 1 (a batch of 0 samples, 0 workers or 0 halving rounds would fail later, blaming another
    cause)."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """A whole number >= 0."""
    return _int_at_least(text, 0)


def seed(text: str) -> int:
    """A random seed, 0 to :data:`~hf_spider.constants.MAX_SEED`."""
    value = _int_at_least(text, 0)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_SEED} (2**32 - 1), got {value}")
    return value


def seeds(text: str) -> tuple[int, ...]:
    """Comma-separated seeds (``0,1,2``), each checked as :func:`seed`, at least one: an empty list would fail later,
    after the records folder was started."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"'{text}' names no seed; pass comma-separated seeds, e.g. 0,1,2")
    return tuple(seed(item) for item in items)


def positive_number(text: str) -> float:
    """A finite number > 0 (a rate, a timeout)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def nonnegative_number(text: str) -> float:
    """A finite number >= 0 (a parameter count such as ``1e8``, a wait), not ``nan`` or ``inf``."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def names(text: str) -> tuple[str, ...]:
    """Comma-separated names (estimators, rankers, repo ids), at least one: ``","`` would otherwise silently mean the
    default list."""
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"'{text}' names nothing; pass comma-separated names")
    return items


def iso_date(text: str) -> date:
    """A day as ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; pass one as YYYY-MM-DD, e.g. 2024-01-01") from None


def output_path(text: str) -> Path:
    """An output path: ``Path("")`` would silently mean the current folder, so an empty one is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; pass a file or folder path (or - for stdout where allowed)")
    return Path(text)


def output_file(text: str) -> Path:
    """An output *file* path: a trailing ``/`` names a folder, which ``Path`` would drop (``out/`` would be written as a
    file called ``out``)."""
    path = output_path(text)
    if text.endswith(("/", os.sep)) and text != "-":
        raise argparse.ArgumentTypeError(f"'{text}' ends with '/', so it names a folder; pass a file path")
    return path


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number; pass one >= {low}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value
