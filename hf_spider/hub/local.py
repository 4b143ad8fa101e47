"""Model repos on disk, laid out as on the Hub, into :class:`ModelRecord`s (``crawl --from-dir``, offline pools).

A repo folder holds ``config.json``, ``README.md`` and optionally ``*.safetensors`` files. The parameter count comes
from the safetensors *header* only (8-byte length, then JSON), so no weight is ever read. The same parsing as the Hub
crawler is used (:mod:`hf_spider.hub.cards`, :func:`~hf_spider.hub.sanitize.sanitize_record`), so a folder and the
Hub give identical records for identical files, and a downloaded hostile repo is as safe to index as a crawled one.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from math import prod
from pathlib import Path
from typing import BinaryIO

from ..errors import InvalidIndexError
from .cards import SENTENCE_TRANSFORMERS_FILES, read_head, repo_file_fields
from .layouts import derive_fields
from .records import ModelRecord, join_errors
from .sanitize import sanitize_record

logger = logging.getLogger(__name__)

#: Files whose presence marks a folder as a model repo.
REPO_MARKERS = ("config.json", "README.md")
# A safetensors header above this size is not a real header (the format caps it at 100 MB).
_MAX_HEADER_BYTES = 100_000_000


def records_from_dir(root: Path) -> list[ModelRecord]:
    """One record per model repo under ``root``: ``root/name`` gives ``name``, ``root/owner/name`` gives ``owner/name``.

    Raises:
        InvalidIndexError: ``root`` is not a folder or holds no model repo (a folder with ``config.json``,
            ``README.md`` or a ``.safetensors`` file).
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidIndexError(f"'{root}' is not a folder; pass a folder with one sub-folder per model repo")
    records = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _is_repo(path):
            records.append(read_model_dir(path, path.name))
            continue
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if _is_repo(sub):
                records.append(read_model_dir(sub, f"{path.name}/{sub.name}"))
    if not records:
        raise InvalidIndexError(
            f"'{root}' holds no model repo; each sub-folder (or owner/name sub-folder) needs a config.json or README.md"
        )
    return records


def read_model_dir(path: Path, repo_id: str, *, sha: str | None = None) -> ModelRecord:
    """The record of one repo folder; what cannot be read is named in ``error`` and the rest is kept.

    Args:
        path: the repo folder.
        repo_id: the id to give the record (``owner/name``).
        sha: the revision the folder holds, when known (a HF cache snapshot folder is named after it).
    """
    path = Path(path)
    names = ("README.md", "config.json", *SENTENCE_TRANSFORMERS_FILES)
    files, unreadable = {}, []
    for name in names:
        try:
            if (path / name).is_file():
                files[name] = read_head(path / name)
            elif os.path.lexists(path / name):  # a looping or dangling symlink, a folder, a device
                raise OSError("not a regular file")
        except OSError as exc:
            unreadable.append(name)
            logger.debug("cannot read %s: %s", path / name, exc)
    fields, errors = repo_file_fields(files)
    if "config.json" in unreadable:
        errors.append(
            "bad_config: config.json is not a readable file (a looping or dangling symbolic link, a folder, or no "
            "permission); replace it with the real file"
        )
    counts: dict[str, int] = {}
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with weights.open("rb") as f:
                for dtype, n in parameters_from_safetensors_header(f).items():
                    counts[dtype] = counts.get(dtype, 0) + n
        except (OSError, ValueError) as exc:
            errors.append(f"bad_weights: {weights.name} has no readable safetensors header ({exc})")
    if counts:
        fields["num_parameters"] = sum(counts.values())
    return sanitize_record(derive_fields(ModelRecord(repo_id=repo_id, sha=sha, **fields, error=join_errors(errors))))


def parameters_from_safetensors_header(f: BinaryIO) -> dict[str, int]:
    """Parameter count per dtype from a safetensors file's header; reads only the header, never the weights.

    Raises:
        ValueError: the file does not start with a safetensors header, or a tensor's dtype or shape is not one (a
            shape that is no list of sizes >= 0, a dtype that is no name).
    """
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError("file is shorter than the 8-byte header length")
    (size,) = struct.unpack("<Q", raw)
    if size > _MAX_HEADER_BYTES:
        raise ValueError(f"header length {size} is not plausible")
    header_bytes = f.read(size)
    if len(header_bytes) != size:
        raise ValueError("file ends inside its header")
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise ValueError(f"header is not JSON ({exc})") from exc
    except RecursionError:
        raise ValueError("header nests too deeply to be JSON a safetensors writer made") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    counts: dict[str, int] = {}
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(tensor, dict) or "dtype" not in tensor or "shape" not in tensor:
            raise ValueError(f"tensor '{name}' has no dtype/shape")
        dtype, shape = tensor["dtype"], tensor["shape"]
        if not isinstance(dtype, str):
            raise ValueError(f"tensor '{name}' has a dtype that is not a name")
        counts[dtype] = counts.get(dtype, 0) + prod(_dimensions(name, shape))
    return counts


def _dimensions(name: str, shape: object) -> list[int]:
    """A tensor's shape as the format defines it, a list of sizes >= 0; anything else (a number, ``null``, a negative
    or fractional size, ``1e999``) is refused, as no safetensors writer makes it and it counts no parameters."""
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"tensor '{name}' has a shape that is not a list of sizes >= 0")
    return shape


def parameters_from_safetensors_bytes(data: bytes) -> dict[str, int]:
    """:func:`parameters_from_safetensors_header` for a file already in memory."""
    import io

    return parameters_from_safetensors_header(io.BytesIO(data))


def _is_repo(path: Path) -> bool:
    return any((path / marker).is_file() for marker in REPO_MARKERS) or any(path.glob("*.safetensors"))


def snapshot_record(repo_id: str, snapshot_dir: str | os.PathLike[str]) -> ModelRecord:
    """The record of a HF cache snapshot folder (``.../snapshots/<sha>``), pinned to that sha."""
    snapshot = Path(snapshot_dir)
    return read_model_dir(snapshot, repo_id, sha=snapshot.name)
