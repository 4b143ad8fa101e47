"""Lineage: which models a candidate descends from, so a fine-tune of a known model is not an unknown.

A repo names its ancestors in its card (``base_model``), its Hub tags (``base_model:finetune:<id>``) and its
``config.json`` (``_name_or_path``, the folder or repo it was saved from); :func:`hf_spider.hub.layouts.derive_fields`
collects them into ``ModelRecord.base_models``. :func:`ancestors` walks them breadth first through the records it
knows (the candidate pool and the bundled index), nearest first: a fine-tune of a fine-tune reaches the recorded
model two hops up, and a cycle (``a`` names ``b``, ``b`` names ``a``) ends the walk instead of looping. Where a repo
declares nothing, :func:`inferred_base` reads the common ``<base>-finetuned-<data>`` naming.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..hub.pretraining import pretraining_sources
from ..hub.records import ModelRecord

#: Hops walked up from a candidate (a fine-tune of a fine-tune of a recorded model is reached).
MAX_HOPS = 3
#: A base inferred from a repo name must be at least this long, so ``bert`` alone never names an ancestor.
_MIN_NAME = 8


def ancestors(record: ModelRecord, lookup: Mapping[str, ModelRecord], *, max_hops: int = MAX_HOPS) -> tuple[str, ...]:
    """Repo ids ``record`` descends from, nearest first, each once, at most ``max_hops`` up.

    Args:
        record: the candidate.
        lookup: records by repo id whose own ``base_models`` continue the walk (a base missing here ends its branch;
            it is still returned).
        max_hops: how far up to walk.
    """
    seen = {record.repo_id}
    found: list[str] = []
    frontier = list(record.base_models or ())
    for _ in range(max_hops):
        following: list[str] = []
        for base in frontier:
            if base in seen:
                continue
            seen.add(base)
            found.append(base)
            parent = lookup.get(base)
            following.extend(parent.base_models or () if parent is not None else ())
        frontier = following
    return tuple(found)


class NameIndex:
    """Known repo ids by lower-cased model name (the repo id without its owner), built once per pool, so
    :func:`inferred_base` looks up each prefix of a name instead of matching every known repo (quadratic in the pool:
    minutes for 5,000 candidates)."""

    def __init__(self, known: Iterable[str]) -> None:
        self.by_name: dict[str, list[str]] = {}
        for candidate in known:
            self.by_name.setdefault(candidate.lower().rpartition("/")[2], []).append(candidate)


def inferred_base(repo_id: str, known: Iterable[str] | NameIndex) -> str | None:
    """The known repo whose name starts this repo's name (``someone/bert-base-uncased-finetuned-sst2`` ->
    ``bert-base-uncased``), the longest such; ``None`` when none does.

    A guess, so it is kept narrow: the base's name must have at least 8 characters, belong to another owner, and the
    rest of the name must not name a pre-training set (``facebook/convnext-base-224-22k`` is a sibling of
    ``facebook/convnext-base-224`` pre-trained on ImageNet-21k, not a fine-tune of it).
    """
    index = known if isinstance(known, NameIndex) else NameIndex(known)
    owner, _, name = repo_id.lower().rpartition("/")
    for end in range(len(name) - 2, _MIN_NAME - 1, -1):  # longest base first; a separator and a rest must follow
        if name[end] not in "-_" or pretraining_sources(name[end + 1 :]):
            continue
        for candidate in index.by_name.get(name[:end], ()):
            if not (owner and candidate.lower().rpartition("/")[0] == owner):
                return candidate
    return None
