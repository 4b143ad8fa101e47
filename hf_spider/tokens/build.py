"""Build a task's tokens from anything ``datasets`` can load: sample, encode, pool per class, cache.

The flow is :func:`~hf_spider.tokens.sources.load_task_source` (what the task is) ->
:func:`~hf_spider.tokens.sampling.stratified_sample` (a few samples per class) -> the general encoder of the task's
modality (class prototypes) and the text encoder (label names) -> :class:`TaskTokens`, cached by content so the same
inputs are never encoded twice.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidDatasetError
from ..hub.output_paths import atomic_write
from ..hub.sanitize import escape_for_display
from .cache import embedding_key, load_tokens, path_fingerprint, save_tokens
from .encoders import default_device, encoder_revision, load_encoder
from .resumable import discard_chunks, encode_in_chunks
from .sampling import DEFAULT_PER_CLASS, sample_task
from .sources import TaskSource, load_task_source
from .task import TaskDescription, TaskTokens, task_statistics

logger = logging.getLogger(__name__)

#: Bump when the tokens built from the same inputs change (sampling, pooling, statistics).
TRANSFORM_VERSION = "1"


def build_task_tokens(
    source: Any,
    *,
    split: str | None = None,
    config: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    text_encoder: str | None = None,
    image_encoder: str | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    num_workers: int = 0,
    streaming: bool | None = None,
    use_cache: bool = True,
) -> TaskTokens:
    """Task tokens of a classification dataset: class prototypes, label-name embeddings and statistics.

    Args:
        source: a ``datasets`` object, a local path, a Hub dataset id, or a :class:`TaskDescription` (label names
            and counts only, e.g. from :func:`~hf_spider.tokens.sources.describe_hub_dataset`: no prototypes).
        split / config / label_column / input_column: see :func:`~hf_spider.tokens.sources.load_task_source`.
        per_class: samples per class behind each prototype; ``seed`` fixes which (both recorded in the tokens).
        text_encoder / image_encoder: Hub ids or local folders; default those of :mod:`hf_spider.constants`.
        device: where the encoders run; default CUDA when available.
        cache_dir: where tokens are cached; default ``$HF_SPIDER_CACHE/task_tokens``.
        num_workers: DataLoader workers for preprocessing; the tokens do not depend on it.
        streaming: stream the dataset; default True for a Hub dataset id, so only the sampled rows are downloaded.
        use_cache: read and write the task-token cache (label-name embeddings are cached by name either way).

    Returns:
        :class:`TaskTokens` with ``encoder`` (``id@sha`` per modality) and ``sampling`` (settings and counts).

    Raises:
        InvalidDatasetError: see ``load_task_source`` and ``stratified_sample``; also an empty label name.
        InvalidEncoderError: an encoder repo cannot serve as one.

    Example::

        >>> tokens = build_task_tokens("path/to/imagefolder", image_encoder="facebook/dinov2-small")  # doctest: +SKIP
        >>> tokens.prototypes.shape  # doctest: +SKIP
        (20, 384)
    """
    from ..constants import CACHE_DIR, DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER

    text_id = text_encoder or DEFAULT_TEXT_ENCODER
    image_id = image_encoder or DEFAULT_IMAGE_ENCODER
    cache = Path(cache_dir) if cache_dir is not None else CACHE_DIR / "task_tokens"
    text_key = f"{text_id}@{encoder_revision(text_id)}"
    labels_only = isinstance(source, TaskDescription)
    if streaming is None:
        streaming = isinstance(source, (str, os.PathLike)) and not Path(source).exists()
    # The key is known before the dataset is loaded, so a hit costs neither loading nor encoding.
    settings: dict[str, Any] = (
        {"description": source.to_dict()}
        if labels_only
        else {
            "split": split,
            "config": config,
            "label_column": label_column,
            "input_column": input_column,
            "per_class": per_class,
            "seed": seed,
            "image_encoder": image_id,
            "streaming": streaming,
            # tokens cached before the description gained a field would be read without it (``local``: a folder's
            # name taken for a Hub dataset's)
            "description_fields": [f.name for f in fields(TaskDescription)],
        }
    )
    fingerprint = _source_fingerprint(source, config) if use_cache else None
    key = None if fingerprint is None else embedding_key(fingerprint, text_key, TRANSFORM_VERSION, **settings)
    if key is not None:
        cached = load_tokens(cache, key)
        if cached is not None and _encoders_unchanged(cached):
            logger.info("task tokens of '%s' read from the cache (%s)", cached.description.name, key)
            return cached
    elif use_cache:
        logger.info("'%s' has no fingerprint, so its task tokens are not cached", source)

    encoders = {"text": text_key}
    sampling: dict[str, Any] = {}
    prototypes = None
    if labels_only:
        description = source
    else:
        task = load_task_source(
            source,
            split=split,
            config=config,
            label_column=label_column,
            input_column=input_column,
            streaming=streaming,
        )
        description = task.description
        sample_id = image_id if description.modality == "image" else text_id
        encoders[description.modality] = f"{sample_id}@{encoder_revision(sample_id)}"
        sampling = {"per_class": per_class, "seed": seed}
        partial = cache / "partial" / key if key is not None else None  # finished chunks of a large sample set
        prototypes, counts = _prototypes(
            task, sample_id, per_class, seed, device or default_device(), num_workers, partial
        )
        sampling.update(counts)
    tokens = TaskTokens(
        description=description,
        prototypes=prototypes,
        label_embeddings=label_embeddings(label_texts(description), text_id, text_key, device, cache),
        statistics=task_statistics(description),
        encoder=encoders,
        sampling=sampling,
    )
    if key is not None:
        save_tokens(cache, key, tokens, inputs={"source": fingerprint, "text_encoder": text_key, **settings})
        discard_chunks(cache / "partial" / key)
    return tokens


def _prototypes(
    task: TaskSource,
    encoder_id: str,
    per_class: int,
    seed: int,
    device: str,
    num_workers: int,
    chunk_dir: Path | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``[C, D]`` mean of the L2-normalised embeddings of each class's samples, and how they were drawn.

    A large sample is encoded in chunks kept in ``chunk_dir`` (:func:`~hf_spider.tokens.resumable.encode_in_chunks`),
    so an interrupted run resumes; the sample is drawn with a fixed seed, so the chunks of a rerun are the same.
    """
    import datasets

    description = task.description
    sample = sample_task(task, per_class=per_class, seed=seed)

    def encode(chunk: Any) -> np.ndarray:
        encoder = load_encoder(encoder_id, modality=description.modality, device=device)  # loaded once, cached
        return encoder.encode(chunk, num_workers=num_workers, progress=len(chunk) == len(sample.inputs))

    embeddings = encode_in_chunks(  # [N, D]
        encode,
        sample.inputs,
        what="samples",
        chunk_dir=chunk_dir,
        load=lambda: load_encoder(encoder_id, modality=description.modality, device=device),
    )
    prototypes = class_prototypes(embeddings, sample.labels, description.num_classes)
    counts = {
        "num_samples": len(sample.inputs),
        "skipped": sample.skipped,
        "unreadable_inputs": len(task.unreadable),
        "rows_read": sample.rows_read,
        "streamed": isinstance(task.dataset, datasets.IterableDataset),
    }
    return prototypes, counts


def label_embeddings(texts: list[str], text_id: str, text_key: str, device: str | None, cache_dir: Path) -> np.ndarray:
    """``[C, D]`` text-encoder embeddings of label names, cached by the names and the encoder's commit.

    Every task with the same label names shares the entry, whatever its samples or settings, and a hit does not even
    load the encoder: a task of 5,000 classes is encoded once (about a minute and a half on two CPU cores), then read
    back in milliseconds, without importing torch (``device`` ``None`` picks one only on a miss). Kept in
    ``<cache_dir>/label_embeddings`` (``$HF_SPIDER_CACHE/task_tokens`` by default), whether or not the task's tokens
    themselves are cached. A large set is announced with an estimate and encoded in chunks kept until the whole is
    cached (:func:`~hf_spider.tokens.resumable.encode_in_chunks`): an interrupted run resumes where it stopped.
    """
    key = embedding_key("labels", text_key, TRANSFORM_VERSION, texts=texts)
    path = cache_dir / "label_embeddings" / f"{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.ndim == 2 and len(cached) == len(texts):
                return cached
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable label-embedding cache entry %s (%s); it will be rebuilt", path, exc)

    def encode(chunk: Any) -> np.ndarray:
        encoder = load_encoder(text_id, modality="text", device=device)  # loaded once, cached
        return encoder.encode(chunk, progress=len(chunk) == len(texts))

    chunks = cache_dir / "label_embeddings" / "partial" / key
    embeddings = encode_in_chunks(
        encode,
        texts,
        what="label names",
        chunk_dir=chunks,
        load=lambda: load_encoder(text_id, modality="text", device=device),
    )
    with atomic_write(path, mode="wb") as f:
        np.save(f, embeddings)
    discard_chunks(chunks)
    return embeddings


def class_prototypes(embeddings: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, D]`` float32 mean of each class's rows of ``embeddings`` ``[N, D]`` (L2-normalised by the encoder).

    The one pooling of class prototypes, shared by :func:`build_task_tokens` and the sampled training tasks of
    :mod:`hf_spider.metarecords`, so a scorer sees training and query tasks summarised the same way.
    """
    return np.stack([embeddings[labels == c].mean(0) for c in range(num_classes)]).astype(np.float32)


def label_texts(description: TaskDescription) -> list[str]:
    """Label names as the text encoder should read them (``"sea_turtle"`` -> ``"sea turtle"``)."""
    texts = [str(name).replace("_", " ").strip() for name in description.label_names]
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        raise InvalidDatasetError(
            f"dataset '{description.name}' has empty label name(s) at id(s) {empty[:5]}; give every class a name"
        )
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8 (argv, a file name) or broken JSON
            raise InvalidDatasetError(
                f"label name '{escape_for_display(text)}' of '{escape_for_display(description.name)}' is not valid "
                "UTF-8 text; pass the names in UTF-8"
            ) from None
    return texts


def _source_fingerprint(source: Any, config: str | None) -> str | None:
    """What the source's content is keyed on: a ``datasets`` fingerprint, the files' sizes and times for a local path,
    the commit SHA for a Hub id; ``None`` (no caching) for streams and unreachable Hub datasets."""
    import datasets

    if isinstance(source, TaskDescription):
        return "labels-only"  # the description itself is in the key
    if isinstance(source, datasets.Dataset):
        return str(source._fingerprint)
    if isinstance(source, datasets.DatasetDict):
        return json.dumps({name: split._fingerprint for name, split in source.items()}, sort_keys=True)
    if not isinstance(source, (str, os.PathLike)):
        return None  # an IterableDataset has no fingerprint
    if Path(source).exists():
        return "path-" + path_fingerprint(source)
    from huggingface_hub import HfApi

    try:
        sha = HfApi().dataset_info(str(source)).sha
    except Exception:  # offline, unreachable (httpx2 errors are no OSError), an invalid id: no cache key; the loader
        return None  # then names the real problem in one line
    return f"hub-{source}-{config}@{sha}" if sha else None


def _encoders_unchanged(tokens: TaskTokens) -> bool:
    """Whether every encoder recorded in cached tokens still resolves to the revision they were built with."""
    for recorded in tokens.encoder.values():
        model_id, _, revision = recorded.rpartition("@")
        if encoder_revision(model_id) != revision:
            return False
    return True


def task_tokens_from_labels(description: TaskDescription, *, text_encoder: str | None = None) -> TaskTokens:
    """Tokens of a task known by its label names only: label-name embeddings and statistics, no prototypes."""
    return build_task_tokens(description, text_encoder=text_encoder, use_cache=False)
