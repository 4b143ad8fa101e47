"""Content-keyed cache of task tokens, on the recipe of ``datasets/fingerprint.py``.

The key hashes the dataset fingerprint, the encoders' commit SHAs, the transform version and every setting that
changes the output (split, columns, samples per class, seed), sorted. Anything that cannot be fingerprinted is not
cached at all, so the worst case is a cache miss, never a wrong hit. Each entry is ``<key>.npz`` (the arrays of
:meth:`TaskTokens.to_npz_dict`) plus a ``<key>.json`` sidecar of the inputs, both written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..hub.output_paths import atomic_write
from .task import TaskTokens

logger = logging.getLogger(__name__)


def embedding_key(dataset_fingerprint: str, embedder_sha: str, transform_version: str, **kw: Any) -> str:
    """A 32-hex-digit key of everything that determines the tokens; ``kw`` must be JSON-able (sorted before hashing)."""
    payload = {"dataset": dataset_fingerprint, "embedder": embedder_sha, "version": transform_version, "kw": kw}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def path_fingerprint(path: str | os.PathLike[str]) -> str:
    """A hash of a file's or folder's file names, sizes and modification times: cheap, and changes with any edit."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    base = root if root.is_dir() else root.parent
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(base)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_tokens(cache_dir: str | os.PathLike[str], key: str) -> TaskTokens | None:
    """The cached tokens for ``key``, or ``None`` when absent or unreadable (then they are rebuilt and rewritten)."""
    path = Path(cache_dir) / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return TaskTokens.from_npz_dict({name: arrays[name] for name in arrays.files})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable task-token cache entry %s (%s); it will be rebuilt", path, exc)
        return None


def save_tokens(cache_dir: str | os.PathLike[str], key: str, tokens: TaskTokens, *, inputs: dict[str, Any]) -> Path:
    """Write ``<key>.npz`` and its ``<key>.json`` sidecar (the key's inputs, for humans) atomically; returns the npz."""
    path = Path(cache_dir) / f"{key}.npz"
    arrays: dict[str, Any] = tokens.to_npz_dict()  # Any: numpy's stub would match a key against allow_pickle
    with atomic_write(path, mode="wb") as f:
        np.savez(f, **arrays)
    with atomic_write(path.with_suffix(".json")) as f:
        json.dump(inputs, f, indent=1, sort_keys=True)
    return path
