"""Penultimate features cached on disk, so a second re-ranking of the same samples runs no forward pass.

What a candidate gives on a probe set depends on the model's revision, the samples and how they were cut (the token
cap of text models), nothing else: not on ``k``, the budget or the estimators. So the features (and the source-class
probabilities LEEP and NCE read) are keyed by

* the revision: the commit SHA of a Hub candidate, or for a candidate read from a folder (``--local-dir``, a
  ``--candidates`` folder) a fingerprint of its files' names, sizes and modification times
  (:func:`~hf_spider.tokens.cache.path_fingerprint`); a branch name never enters a key;
* the samples' fingerprint: a hash of the drawn inputs' bytes and labels (the dataset, the seed and ``per_class``
  all act through them, so a wrong hit is impossible and the worst case is a miss), recorded with the sampling
  settings in a JSON sidecar;
* :data:`FEATURES_VERSION` and the token cap.

Entries are written once, with ``safetensors`` (no pickle is ever read back), to a temporary file renamed into place:
a reader sees a whole entry or none, and two processes writing the same key write the same bytes. They live under
``$HF_SPIDER_CACHE/features`` (:data:`hf_spider.constants.CACHE_DIR`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..hub.records import ModelRecord
from .forward import CandidateFeatures
from .options import ForwardOptions
from .samples import TaskSamples

logger = logging.getLogger(__name__)

#: Bump when what a forward pass returns changes (pooling, head capture, dtype): older entries are then never read.
#: 2: a text candidate whose tokenizer reads nearly every word as unknown fails before its forward pass
#: (:data:`~.preprocess.UNKNOWN_TOKEN_LIMIT`), so the features such a candidate left in the cache are not read.
FEATURES_VERSION = "2"


@dataclass(frozen=True)
class FeatureCache:
    """A folder of cached features (default ``$HF_SPIDER_CACHE/features``).

    Args:
        root: the folder; created on the first write.
    """

    root: Path

    @classmethod
    def default(cls) -> FeatureCache:
        from ..constants import CACHE_DIR

        return cls(CACHE_DIR / "features")

    def key(self, record: ModelRecord, samples: TaskSamples, options: ForwardOptions) -> str | None:
        """The entry's key, or ``None`` when the revision is unknown (a Hub candidate without a SHA is not cached)."""
        revision = _revision(record, options)
        if revision is None:
            return None
        payload = {
            "model": record.repo_id,
            "revision": revision,
            "samples": samples_fingerprint(samples),
            "max_length": options.max_length if samples.description.modality == "text" else None,
            "version": FEATURES_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def load(self, key: str) -> CandidateFeatures | None:
        """The cached features, or ``None`` when absent or unreadable (then they are computed and rewritten)."""
        path = self.root / f"{key}.safetensors"
        if not path.is_file():
            return None
        from safetensors.numpy import load_file

        try:
            arrays = load_file(str(path))
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable feature cache entry %s (%s); it will be recomputed", path, exc)
            return None
        return CandidateFeatures(
            features=arrays["features"],
            probabilities=arrays.get("probabilities"),
            forward_seconds=0.0,
            load_seconds=0.0,
        )

    def save(self, key: str, features: CandidateFeatures, sidecar: dict[str, Any]) -> None:
        """Write an entry atomically (a failure to write is logged, never raised: the cache is an optimisation)."""
        from safetensors.numpy import save_file

        arrays = {"features": np.ascontiguousarray(features.features)}
        if features.probabilities is not None:
            arrays["probabilities"] = np.ascontiguousarray(features.probabilities)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for suffix, write in (
                (".json", lambda p: Path(p).write_text(json.dumps(sidecar, sort_keys=True, default=str))),
                (".safetensors", lambda p: save_file(arrays, p)),  # last: its presence marks a complete entry
            ):
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{key}.", suffix=suffix)
                os.close(fd)
                try:
                    write(tmp)
                    os.replace(tmp, self.root / f"{key}{suffix}")
                finally:
                    Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not write the feature cache entry %s (%s)", key, exc)


def samples_fingerprint(samples: TaskSamples) -> str:
    """A hash of the samples' modality, labels and input bytes (images: mode, size and pixels; texts: UTF-8)."""
    digest = hashlib.sha256()
    digest.update(samples.description.modality.encode())
    digest.update(np.ascontiguousarray(samples.labels, dtype=np.int64).tobytes())
    for item in samples.inputs:
        if isinstance(item, str):
            digest.update(b"t" + item.encode("utf-8") + b"\0")
        else:
            digest.update(f"i{item.mode}{item.size}".encode())
            digest.update(item.tobytes())
    return digest.hexdigest()[:32]


def _revision(record: ModelRecord, options: ForwardOptions) -> str | None:
    if options.local_dir is not None:
        from ..tokens.cache import path_fingerprint

        folder = Path(options.local_dir) / record.repo_id
        return f"files:{path_fingerprint(folder)}" if folder.is_dir() else None
    return record.sha
