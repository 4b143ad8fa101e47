"""A records folder's manifest: the settings, datasets, tasks, encoders and pinned candidates of its build.

A run checks its own against the folder's (a resumed build must use the same settings and data) and merges the
candidates: new ones are added, and one already there keeps the revision it was first pinned to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..errors import InvalidRecordsError
from ..hub.records import ModelRecord
from .store import RecordsFolder
from .task_tokens import encoder_keys
from .tasks import DatasetPool, TrainingTask

logger = logging.getLogger(__name__)


def reconcile(
    folder: RecordsFolder,
    settings: dict[str, Any],
    pools: dict[str, DatasetPool],
    tasks: Sequence[TrainingTask],
    candidates: Sequence[ModelRecord],
    text_encoder: str | None,
    image_encoder: str | None,
) -> dict[str, Any]:
    """The manifest of this build, checked against (and merged with) the one already in ``folder``; written.

    Settings, datasets (by the digest of the samples read) and tasks must match a previous run's; candidates may be
    added, and a candidate already in the manifest keeps the revision it was pinned to.

    Raises:
        InvalidRecordsError: the folder's records were built with other settings, data or encoders.
    """
    datasets = [
        {
            "name": p.name,
            "source": p.description.source or p.name,
            "modality": p.modality,
            "label_names": list(p.description.label_names),
            "pool_size": len(p.labels),
            "digest": p.digest,
        }
        for p in pools.values()
    ]
    encoders = encoder_keys(pools, text_encoder, image_encoder)
    manifest: dict[str, Any] = {
        "settings": settings,
        "datasets": datasets,
        "tasks": [t.to_dict() for t in tasks],
        "encoders": encoders,
        "candidates": [],
    }
    previous = folder.read_manifest()
    if previous is not None:
        for part in ("settings", "datasets", "tasks", "encoders"):
            if previous[part] != manifest[part]:
                difference = _difference(previous[part], manifest[part])
                raise InvalidRecordsError(
                    f"records folder '{folder.path}' was built with other {part} ({difference}); pass the same "
                    "settings and data to resume it, or another --output to start new records"
                )
        manifest["candidates"] = list(previous["candidates"])
    known = {c["repo_id"]: c for c in manifest["candidates"]}
    for record in candidates:
        pinned = known.get(record.repo_id)
        if pinned is not None:
            if record.sha is not None and pinned["sha"] not in (None, record.sha):
                logger.info("%s stays pinned to %s, its records' revision", record.repo_id, pinned["sha"])
            continue
        entry = {
            "repo_id": record.repo_id,
            "sha": record.sha,
            "modality": record.modality,
            "num_parameters": record.num_parameters,
        }
        manifest["candidates"].append(entry)
        known[record.repo_id] = entry
    manifest["hf_spider_version"] = __version__
    folder.write_manifest(manifest)
    return manifest


def _difference(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3])
    if isinstance(old, list) and isinstance(new, list) and len(old) != len(new):
        return f"{len(old)} then, {len(new)} now"
    return "they differ"


def pinned_record(entry: dict[str, Any]) -> ModelRecord:
    """The candidate as the manifest pinned it (its first run's revision)."""
    tag = {"image": "image-classification", "text": "text-classification"}.get(entry["modality"] or "")
    return ModelRecord(
        repo_id=entry["repo_id"], sha=entry["sha"], pipeline_tag=tag, num_parameters=entry["num_parameters"]
    )
