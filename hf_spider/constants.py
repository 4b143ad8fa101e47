"""Settings read once from the environment. Offline mode itself is huggingface_hub's (``HF_HUB_OFFLINE``)."""

from __future__ import annotations

import os
from pathlib import Path

#: The general-purpose text encoder of task tokens (label names, text prototypes) and PTM label-name tokens.
DEFAULT_TEXT_ENCODER = os.environ.get("HF_SPIDER_TEXT_ENCODER", "sentence-transformers/all-MiniLM-L6-v2")
#: The general-purpose image encoder of image-task prototypes.
DEFAULT_IMAGE_ENCODER = os.environ.get("HF_SPIDER_IMAGE_ENCODER", "facebook/dinov2-small")

#: Where hf_spider caches task tokens and other derived artefacts.
CACHE_DIR = Path(os.environ.get("HF_SPIDER_CACHE", Path.home() / ".cache" / "hf_spider"))
