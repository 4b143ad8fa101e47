"""Settings read once from the environment, and limits every layer shares. Offline mode itself is huggingface_hub's
(``HF_HUB_OFFLINE``)."""

from __future__ import annotations

import os
from pathlib import Path

#: The general-purpose text encoder of task tokens (label names, text prototypes) and PTM label-name tokens.
DEFAULT_TEXT_ENCODER = os.environ.get("HF_SPIDER_TEXT_ENCODER", "sentence-transformers/all-MiniLM-L6-v2")
#: The general-purpose image encoder of image-task prototypes.
DEFAULT_IMAGE_ENCODER = os.environ.get("HF_SPIDER_IMAGE_ENCODER", "facebook/dinov2-small")

#: Where hf_spider caches task tokens and other derived artefacts.
CACHE_DIR = Path(os.environ.get("HF_SPIDER_CACHE", Path.home() / ".cache" / "hf_spider"))

#: The largest seed every generator we seed accepts: scikit-learn's ``random_state`` and numpy's ``RandomState`` stop at
#: 2**32 - 1 (``torch.manual_seed`` at 2**64 - 1), so a larger one would fail after the work started. The command line
#: (``hf_spider.cli._types.seed``) and :class:`~hf_spider.metarecords.FinetuneProtocol` check against it.
MAX_SEED = 2**32 - 1
