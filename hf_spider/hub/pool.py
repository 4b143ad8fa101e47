"""The embedded default candidate pool: real Hub backbones shipped as package data, each record with its provenance.

``data/default_pool.parquet`` (built by ``scripts/build_default_pool.py``; ``docs/pool.md`` says what each part knows
and from where) holds the TransferGraph models, every ``timm/*`` repo of timm's pretrained registry with its ImageNet
facts, and the MTEB text encoders. It replaces the 349 TransferGraph models as ``--candidates bundled``; those stay
``data/bundled_index.jsonl``, the records the scorer is trained on.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from .index import read_index
from .records import ModelRecord

DEFAULT_POOL = "default_pool.parquet"


def default_pool_path() -> Path:
    """Path of the default pool shipped with the package."""
    return Path(str(resources.files("hf_spider") / "data" / DEFAULT_POOL))


@lru_cache(maxsize=1)
def _default_pool() -> tuple[ModelRecord, ...]:
    return tuple(read_index(default_pool_path()))


def load_default_pool() -> list[ModelRecord]:
    """The default pool's records, read once per process (the same objects each call, so precomputed PTM tokens
    recognise them by identity; see :mod:`hf_spider.tokens.pool_tokens`)."""
    return list(_default_pool())
