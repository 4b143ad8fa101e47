"""One entry per checkpoint: re-uploads and copies of a model collapse into its original, which lists them as aliases.

The Hub holds many copies of one set of weights (``nielsr/convnext-xlarge-224-22k`` re-uploads
``facebook/convnext-xlarge-224-22k``). A scorer gives copies the same score, so they would fill a shortlist with one
checkpoint under several names. Two records are copies of one checkpoint when

1. their weight files are identical: the same LFS sha256 digests (``ModelRecord.extra["weights_sha256"]``, which a
   crawl fills when the Hub's file listing sends them; see :func:`weights_sha256`), or
2. they share the model name under different owners, the architecture and the parameter count (all three known).

The original kept is, in order: the one another copy's card or config names as its base model; the earliest created;
the owner that publishes more models of the same architecture family in the pool (the family's publisher, not a
re-uploader); the most downloaded; then the repo id, so the choice never depends on the order of the pool. The
others are listed, sorted, in the original's ``extra["aliases"]``; the shortlist shows them in its notes and JSON.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from .records import ModelRecord

#: ``ModelRecord.extra`` key of the repo ids collapsed into a record.
ALIASES_KEY = "aliases"
#: ``ModelRecord.extra`` key of the sorted LFS sha256 digests of a record's weight files.
WEIGHTS_KEY = "weights_sha256"
#: Files that hold weights (the LFS digests of these decide rule 1).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".h5", ".msgpack")


def weights_sha256(siblings: Iterable[Any] | None) -> tuple[str, ...] | None:
    """Sorted LFS sha256 digests of the weight files of a file listing (``ModelInfo.siblings``), ``None`` when the
    listing sends no digest for them (the listing API only sends them on request: ``files_metadata=True``)."""
    digests = []
    for sibling in siblings or ():
        lfs = getattr(sibling, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        if sha and str(getattr(sibling, "rfilename", "")).endswith(WEIGHT_SUFFIXES):
            digests.append(str(sha))
    return tuple(sorted(digests)) or None


def aliases_of(record: ModelRecord) -> tuple[str, ...]:
    """The repo ids collapsed into ``record`` (empty when it has no copy)."""
    return tuple(record.extra.get(ALIASES_KEY) or ())


def collapse_copies(records: Sequence[ModelRecord]) -> list[ModelRecord]:
    """``records`` with every group of copies replaced by its original (in the position of the group's first member),
    the others named in its ``extra["aliases"]``. Idempotent: a collapsed pool collapses to itself.

    Example:
        >>> a = ModelRecord("facebook/convnext-tiny", architectures=("ConvNext",), num_parameters=28)
        >>> b = ModelRecord("someone/convnext-tiny", architectures=("ConvNext",), num_parameters=28)
        >>> [(r.repo_id, r.extra["aliases"]) for r in collapse_copies([b, a])]
        [('facebook/convnext-tiny', ['someone/convnext-tiny'])]
    """
    groups = _groups(records)
    if all(len(g) == 1 for g in groups.values()):
        return list(records)
    publishers: Counter[tuple[str, str | None]] = Counter((_owner(r), r.model_type) for r in records if r.model_type)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(records[members[0]])
            continue
        group = [records[i] for i in members]
        original = min(group, key=lambda r: _precedence(r, group, publishers))
        aliases = sorted({*(r.repo_id for r in group if r is not original), *(a for r in group for a in aliases_of(r))})
        out.append(replace(original, extra={**original.extra, ALIASES_KEY: aliases}))
    return out


def _groups(records: Sequence[ModelRecord]) -> dict[int, list[int]]:
    """Connected groups of copies (union-find over both rules), keyed by their first member, in pool order."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[Any, ...], int] = {}
    for i, record in enumerate(records):
        for key in _keys(record):
            j = seen.setdefault(key, i)
            if j != i:
                a, b = find(i), find(j)
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        groups[find(i)].append(i)
    return dict(groups)


def _keys(record: ModelRecord) -> list[tuple[Any, ...]]:
    """What makes two records copies (see the module docstring): their weight digests; their model name (the repo id
    without its owner), architecture and size."""
    keys: list[tuple[Any, ...]] = []
    digests = record.extra.get(WEIGHTS_KEY)
    if digests:
        keys.append(("weights", tuple(digests)))
    architecture = record.architectures or ((record.model_type,) if record.model_type else None)
    if "/" in record.repo_id and architecture and record.num_parameters is not None:
        name = record.repo_id.split("/", 1)[1].lower()
        keys.append(("name", name, tuple(architecture), record.num_parameters))
    return keys


def _precedence(
    record: ModelRecord, group: Sequence[ModelRecord], publishers: Counter[tuple[str, str | None]]
) -> tuple[Any, ...]:
    """Sort key of a group member: the lowest is the original (see the module docstring)."""
    named = any(record.repo_id in (other.base_models or ()) for other in group if other is not record)
    return (
        not named,
        record.created_at or "\uffff",  # ISO dates sort in time order; unknown dates last
        -publishers[(_owner(record), record.model_type)],
        -(record.downloads or 0),
        record.repo_id,
    )


def _owner(record: ModelRecord) -> str:
    return record.repo_id.split("/", 1)[0] if "/" in record.repo_id else ""
