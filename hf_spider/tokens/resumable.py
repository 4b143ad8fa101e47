"""Encoding a large label or sample set in chunks that survive an interruption, and saying up front what it costs.

10,000 label names take minutes on a CPU. Encoded in one go, a Ctrl-C at batch 160 of 313 loses everything and the
user was never told how long to wait. Here the items are encoded a chunk at a time: each finished chunk is saved in a
folder named after the content key of the whole set, so the same command run again skips what finished. A large set
is announced before anything is encoded, and the time the rest will take is logged after a first small chunk (a few
seconds); a progress bar (``name="hf_spider.embed"``) counts the chunks. The folder is removed once the whole result
is cached by the caller.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..hub.output_paths import atomic_write

logger = logging.getLogger(__name__)

#: Items encoded, and saved, per chunk: at most a few seconds of CPU work is lost when a run is interrupted.
CHUNK_SIZE = 1024
#: From this many items, the encoding is announced, and timed on a first chunk of :data:`PROBE_SIZE` items.
LARGE_SET = 2 * CHUNK_SIZE
#: Items of the first chunk, which times the encoder for the estimate: small, so the estimate comes in seconds.
PROBE_SIZE = 64


def encode_in_chunks(
    encode: Callable[[Sequence[Any]], np.ndarray],
    items: Sequence[Any],
    *,
    what: str,
    chunk_dir: Path | None,
    chunk_size: int = CHUNK_SIZE,
    load: Callable[[], object] | None = None,
) -> np.ndarray:
    """``encode(items)`` (``[N, D]``), a chunk at a time, each finished chunk kept in ``chunk_dir``.

    Args:
        encode: encodes one chunk; called only for chunks not already in ``chunk_dir`` (so a resumed run whose
            chunks all finished never loads the encoder).
        items: what to encode, in a deterministic order: ``chunk_dir`` must be named after their content.
        what: how the log names the items (``"label names"``).
        chunk_dir: where finished chunks are kept (``None``: nothing is kept, e.g. an uncacheable stream).
        chunk_size: items per chunk (the first holds at most :data:`PROBE_SIZE`).
        load: called once, untimed, before the first chunk that must be encoded (it loads the encoder, whose
            seconds would otherwise inflate the estimate tenfold).
    """
    if len(items) <= chunk_size:
        return encode(items)
    from huggingface_hub.utils import tqdm

    probe = min(chunk_size, PROBE_SIZE)  # the chunks depend on the number of items only, so a rerun finds them
    bounds = [0, *range(probe, len(items), chunk_size), len(items)]
    if len(items) >= LARGE_SET:
        kept = f"; finished chunks are kept in {chunk_dir}, so an interrupted run resumes" if chunk_dir else ""
        logger.warning("encoding %d %s in %d chunks%s", len(items), what, len(bounds) - 1, kept)
    parts, timed = [], False
    spans = list(itertools.pairwise(bounds))
    for start, end in tqdm(spans, desc=f"encode {what}", unit="chunk", name="hf_spider.embed", leave=False):
        chunk = items[start:end]
        path = chunk_dir / f"{start:09d}-{len(chunk)}.npy" if chunk_dir is not None else None
        part = _load_chunk(path, len(chunk))
        if part is None:
            if load is not None:
                load()
                load = None
            began = time.perf_counter()
            part = encode(chunk)
            if not timed and len(items) >= LARGE_SET:
                left = (time.perf_counter() - began) * (len(items) - start - len(chunk)) / len(chunk)
                logger.warning("about %s left for the other %s (at the first chunk's pace)", _duration(left), what)
                timed = True
            if path is not None:
                with atomic_write(path, mode="wb") as f:
                    np.save(f, part)
        parts.append(part)
    return np.concatenate(parts)


def discard_chunks(chunk_dir: Path | None) -> None:
    """Remove the chunks of a set whose whole result is now cached."""
    if chunk_dir is not None:
        shutil.rmtree(chunk_dir, ignore_errors=True)


def _load_chunk(path: Path | None, rows: int) -> np.ndarray | None:
    if path is None or not path.is_file():
        return None
    try:
        part = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable chunk %s (%s); it is encoded again", path, exc)
        return None
    return part if part.ndim == 2 and len(part) == rows else None


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
