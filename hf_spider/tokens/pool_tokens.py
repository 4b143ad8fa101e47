"""PTM tokens of the default pool, precomputed with it and memory-mapped, so ranking it embeds and builds nothing.

Building the tokens of ~2,000 candidates (label and card embeddings, lineage, ImageNet facts) takes seconds; they
depend only on the records and the text encoder, so ``scripts/build_default_pool.py`` builds them once, beside the
pool (``data/default_pool_tokens/``):

* ``head.npy`` ``[N, HEAD_DIM]`` float32: the non-text head of each token;
* ``text_index.npy`` ``[N, len(TEXT_PARTS)]`` int32 and ``text_table.npy`` ``[U, D]`` float32: each text part as a
  row of a table of the distinct vectors (most candidates share ImageNet's labels or have none), row 0 all zeros;
* ``meta.json``: the text encoder, the token schema, the sha256 of the pool file they were built from, and per row
  the repo id, ancestors and ImageNet facts.

:func:`precomputed_tokens` answers only for records that *are* the pool's (the very objects
:func:`~hf_spider.hub.pool.load_default_pool` returned, or equal ones; copies collapsed into them may add aliases),
built with the same encoder, schema and pool file; anything else is a miss and the tokens are built as usual, so a
stale or foreign cache can cost time but never give a wrong token. They equal what
:func:`~hf_spider.tokens.ptm.ptm_tokens` builds for the same records (a test checks it). An index file read as a pool
(:func:`register_index`) gets the same files in ``HF_SPIDER_CACHE/pool_tokens/``, built on its first ranking.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..hub.dedup import ALIASES_KEY
from ..hub.output_paths import atomic_write
from ..hub.pool import default_pool_path, load_default_pool
from ..hub.records import ModelRecord
from .facts import ImageNetFacts
from .ptm import HEAD_DIM, PTM_SCHEMA_VERSION, TEXT_PARTS, PTMTokens, ptm_tokens, token_dim

logger = logging.getLogger(__name__)

#: Folder of the precomputed tokens, beside the pool in ``hf_spider/data``.
POOL_TOKENS_DIR = "default_pool_tokens"


def pool_tokens_path() -> Path:
    return Path(str(resources.files("hf_spider") / "data" / POOL_TOKENS_DIR))


@dataclass(frozen=True, eq=False)
class PoolTokens:
    """The precomputed tokens of one pool file (arrays memory-mapped; see the module docstring)."""

    records: tuple[ModelRecord, ...]
    head: np.ndarray  # [N, HEAD_DIM]
    text_index: np.ndarray  # [N, parts]
    text_table: np.ndarray  # [U, D]
    ancestors: tuple[tuple[str, ...], ...]
    facts: tuple[ImageNetFacts | None, ...]
    row_of: dict[str, int]  # repo id -> row

    def rows_of(self, records: Sequence[ModelRecord]) -> np.ndarray | None:
        """Row of each record in the pool, ``None`` unless every record is one of the pool's (see the module)."""
        return _rows_of(self.records, self.row_of, records)

    def tokens(self, rows: np.ndarray) -> PTMTokens:
        """The :class:`PTMTokens` of ``rows``, assembled from the head and the text table."""
        dim = self.text_table.shape[1]
        features = np.empty((len(rows), token_dim(dim)), dtype=np.float32)
        features[:, :HEAD_DIM] = self.head[rows]
        features[:, HEAD_DIM:] = self.text_table[self.text_index[rows]].reshape(len(rows), -1)
        return PTMTokens(
            model_ids=tuple(self.records[r].repo_id for r in rows),
            features=features,
            text_dim=dim,
            ancestors=tuple(self.ancestors[r] for r in rows),
            facts=tuple(self.facts[r] for r in rows),
        )


def precomputed_tokens(records: Sequence[ModelRecord], *, text_encoder: str | None = None) -> PTMTokens | None:
    """The precomputed tokens of ``records``, all of one pool (the default pool, or an index file registered with
    :func:`register_index`, whose tokens are built on first use); ``None`` on any miss (see the module)."""
    if not records:
        return None
    shipped = load_pool_tokens(text_encoder)
    rows = shipped.rows_of(records) if shipped is not None else None
    if shipped is not None and rows is not None:
        return shipped.tokens(rows)
    for digest, (_, pooled, row_of) in list(_INDEXES.items()):
        rows = _rows_of(pooled, row_of, records)
        if rows is not None:  # the records are this file's: read (or build once) its tokens
            pool = _index_tokens(digest, text_encoder)
            return pool.tokens(rows) if pool is not None else None
    return None


#: Index files read in this process (:func:`register_index`): path, records and row of each repo id, by sha256.
_INDEXES: dict[str, tuple[Path, tuple[ModelRecord, ...], dict[str, int]]] = {}


def register_index(path: str | os.PathLike[str], records: Sequence[ModelRecord]) -> None:
    """Remember that ``records`` are the rows of the index file ``path``: ranking them reads their tokens from the
    cache (``HF_SPIDER_CACHE/pool_tokens/<sha256 of the file>``), built there on first use, so a crawled index of
    100,000 models is tokenised once per machine, like the default pool once per release."""
    path = Path(path)
    pooled = tuple(records)
    _INDEXES[_sha256(path)] = (path, pooled, {r.repo_id: i for i, r in enumerate(pooled)})
    _index_tokens.cache_clear()


@lru_cache(maxsize=8)
def _index_tokens(digest: str, text_encoder: str | None) -> PoolTokens | None:
    from ..constants import CACHE_DIR, DEFAULT_TEXT_ENCODER

    path, records, _ = _INDEXES[digest]
    encoder = re.sub(r"[^A-Za-z0-9.-]+", "--", text_encoder or DEFAULT_TEXT_ENCODER)
    folder = CACHE_DIR / "pool_tokens" / f"{digest[:32]}-{encoder}-v{PTM_SCHEMA_VERSION}"
    pool = _read(folder, records, text_encoder, path)
    if pool is None:
        try:
            write_pool_tokens(records, path, folder, text_encoder=text_encoder)
        except OSError as exc:  # a read-only cache only costs speed: build the tokens in memory instead
            logger.warning("could not cache the PTM tokens of %s in %s (%s)", path, folder, exc)
            return None
        pool = _read(folder, records, text_encoder, path)
    return pool


@lru_cache(maxsize=2)
def load_pool_tokens(text_encoder: str | None = None) -> PoolTokens | None:
    """The shipped tokens of the default pool if they were built for it with ``text_encoder``; ``None`` otherwise."""
    return _read(pool_tokens_path(), tuple(load_default_pool()), text_encoder, default_pool_path())


def _read(
    folder: Path, records: tuple[ModelRecord, ...], text_encoder: str | None, pool_file: Path
) -> PoolTokens | None:
    """The tokens in ``folder`` if they were built from ``pool_file`` (whose rows are ``records``) with
    ``text_encoder`` and this token schema; ``None`` otherwise."""
    from ..constants import DEFAULT_TEXT_ENCODER

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        meta.get("schema_version") != PTM_SCHEMA_VERSION
        or meta.get("text_encoder") != (text_encoder or DEFAULT_TEXT_ENCODER)
        or meta.get("pool_sha256") != _sha256(pool_file)
        or [r.repo_id for r in records] != meta.get("model_ids")
    ):
        return None
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("head", "text_index", "text_table")}
    except (OSError, ValueError):
        return None
    return PoolTokens(
        records=records,
        head=arrays["head"],
        text_index=arrays["text_index"],
        text_table=arrays["text_table"],
        ancestors=tuple(tuple(a) for a in meta["ancestors"]),
        facts=tuple(_facts(f) for f in meta["facts"]),
        row_of={r.repo_id: i for i, r in enumerate(records)},
    )


def write_pool_tokens(
    records: Sequence[ModelRecord], pool_file: Path, folder: Path, *, text_encoder: str | None = None
) -> None:
    """Build the tokens of ``records`` (the rows of ``pool_file``, in order) and write them to ``folder``."""
    from ..constants import DEFAULT_TEXT_ENCODER

    tokens = ptm_tokens(records, text_encoder=text_encoder)
    text = tokens.features[:, HEAD_DIM:].reshape(len(records) * len(TEXT_PARTS), tokens.text_dim)
    zeros = np.zeros((1, tokens.text_dim), dtype=np.float32)
    table, inverse = np.unique(np.concatenate([zeros, text]), axis=0, return_inverse=True)
    order = np.argsort(np.any(table != 0, axis=1), kind="stable")  # the zero vector first
    table, inverse = table[order], np.argsort(order)[inverse.reshape(-1)]
    meta: dict[str, Any] = {
        "schema_version": PTM_SCHEMA_VERSION,
        "text_encoder": text_encoder or DEFAULT_TEXT_ENCODER,
        "pool_sha256": _sha256(pool_file),
        "model_ids": list(tokens.model_ids),
        "ancestors": [list(a) for a in tokens.ancestors],
        "facts": [asdict(f) if f is not None else None for f in tokens.facts],
    }
    arrays = {
        "head.npy": np.ascontiguousarray(tokens.features[:, :HEAD_DIM]),
        "text_index.npy": inverse[1:].reshape(len(records), len(TEXT_PARTS)).astype(np.int32),
        "text_table.npy": table.astype(np.float32),
    }
    for name, array in arrays.items():
        with atomic_write(folder / name, mode="wb") as f:
            np.save(f, array)
    with atomic_write(folder / "meta.json") as f:
        json.dump(meta, f, sort_keys=True)


def _rows_of(
    pooled: Sequence[ModelRecord], row_of: dict[str, int], records: Sequence[ModelRecord]
) -> np.ndarray | None:
    """Row of each of ``records`` in ``pooled``, ``None`` unless every one is the pool's own record."""
    rows = np.empty(len(records), dtype=np.int64)
    for i, record in enumerate(records):
        row = row_of.get(record.repo_id)
        if row is None or not _same(record, pooled[row]):
            return None
        rows[i] = row
    return rows


def _same(record: ModelRecord, pooled: ModelRecord) -> bool:
    """Whether ``record`` is the pool's record (itself, an equal one, or it with the aliases of collapsed copies)."""
    if record is pooled or record == pooled:
        return True
    return ALIASES_KEY in record.extra and replace(
        record, extra={k: v for k, v in record.extra.items() if k != ALIASES_KEY}
    ) == replace(pooled, extra={k: v for k, v in pooled.extra.items() if k != ALIASES_KEY})


def _facts(value: dict[str, Any] | None) -> ImageNetFacts | None:
    if value is None:
        return None
    return ImageNetFacts(**{**value, "pretraining": tuple(value.get("pretraining") or ())})


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
