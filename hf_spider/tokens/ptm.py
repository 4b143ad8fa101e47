"""PTM tokens: a fixed-length vector per pre-trained model, built from what the Hub says about it.

Model Spider represents every candidate by a *PTM token*. Ours has two parts. The **content** part is computed from a
:class:`~hf_spider.hub.records.ModelRecord` alone (architecture family, size, input size, Fennec's archi2vec vector,
pre-training sources and scale, ImageNet facts, head size, language, label names, training datasets, card results and
text, popularity), so a model uploaded yesterday can be ranked without retraining; a model that declares its base
model inherits its ancestor's ImageNet facts when it has none of its own (:mod:`hf_spider.tokens.lineage`).

The **learned** part (the collaborative signal of models seen in training, and their position in
the transfer space) lives in the scorer, keyed by repo id; unseen models are placed from content alone. Text fields
are embedded with the general text encoder, one call per unique string, so ranking a zoo that shares ImageNet's 1000
labels embeds those labels once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..hub.records import ModelRecord
from .archi2vec import ARCHI2VEC_DIM, archi2vec
from .facts import ImageNetFacts, facts_for, inherited
from .lineage import NameIndex, ancestors, inferred_base
from .metadata import METADATA_DIM, metadata_features

logger = logging.getLogger(__name__)

#: Bumped whenever the layout or meaning of the token changes; a scorer refuses tokens of another version.
#: 2: the archi2vec block after the family buckets. 3: the metadata block after archi2vec (pre-training, ImageNet
#: facts, head, language; :mod:`hf_spider.tokens.metadata`).
PTM_SCHEMA_VERSION = 3
#: Architecture families are hashed into this many one-hot buckets, so a family never seen still gets a slot.
FAMILY_BUCKETS = 32
#: Scalar features, in token order (each ``has_*`` flag tells a missing value from a zero).
SCALAR_NAMES = (
    "log_num_parameters",
    "has_num_parameters",
    "input_size",
    "has_input_size",
    "log_num_labels",
    "has_label_names",
    "has_datasets",
    "has_base_models",
    "card_accuracy",
    "has_card_accuracy",
    "log_downloads",
    "has_downloads",
    "log_likes",
    "has_likes",
    "is_image",
    "is_text",
)
#: Text embeddings, in token order: the model's own label names, its training datasets' labels, its card text.
TEXT_PARTS = ("label_embedding", "dataset_embedding", "card_embedding")
#: Width of the non-text head of a token: scalars, family buckets, archi2vec, metadata.
HEAD_DIM = len(SCALAR_NAMES) + FAMILY_BUCKETS + ARCHI2VEC_DIM + METADATA_DIM
#: Label names that carry no meaning (``LABEL_0``) are ignored rather than embedded.
_GENERIC_LABEL = re.compile(r"^(label|class)[_ -]?\d+$", re.IGNORECASE)
_CARD_CHARS = 1000  # the encoder truncates at 256 tokens anyway; the card's opening says what the model is


@dataclass(frozen=True, eq=False)
class PTMTokens:
    """Content tokens of a list of models.

    Args:
        model_ids: repo ids, in row order.
        features: ``[N, token_dim(D)]`` float32, layout given by :data:`SCALAR_NAMES`, the family buckets,
            archi2vec and :data:`TEXT_PARTS` (see the ``*_slice`` helpers).
        text_dim: ``D``, the text encoder's width.
        schema_version: :data:`PTM_SCHEMA_VERSION` at build time.
        ancestors: per model, the repo ids it descends from, nearest first (empty when unknown).
        facts: per model, the ImageNet facts its metadata block was built from (``None``: none known).
    """

    model_ids: tuple[str, ...]
    features: np.ndarray
    text_dim: int
    schema_version: int = PTM_SCHEMA_VERSION
    ancestors: tuple[tuple[str, ...], ...] = ()
    facts: tuple[ImageNetFacts | None, ...] = ()

    def __len__(self) -> int:
        return len(self.model_ids)


def token_dim(text_dim: int) -> int:
    """Width of a PTM token for a text encoder of width ``text_dim``."""
    return HEAD_DIM + len(TEXT_PARTS) * text_dim


def family_slice() -> slice:
    """Where the one-hot architecture-family buckets sit in a token."""
    return slice(len(SCALAR_NAMES), len(SCALAR_NAMES) + FAMILY_BUCKETS)


def archi2vec_slice() -> slice:
    """Where the archi2vec vector (:mod:`hf_spider.tokens.archi2vec`) sits in a token."""
    start = len(SCALAR_NAMES) + FAMILY_BUCKETS
    return slice(start, start + ARCHI2VEC_DIM)


def metadata_slice() -> slice:
    """Where the metadata block (:mod:`hf_spider.tokens.metadata`) sits in a token."""
    return slice(HEAD_DIM - METADATA_DIM, HEAD_DIM)


def text_slice(part: str, text_dim: int) -> slice:
    """Where embedding ``part`` (one of :data:`TEXT_PARTS`) sits in a token."""
    start = HEAD_DIM + TEXT_PARTS.index(part) * text_dim
    return slice(start, start + text_dim)


def family_bucket(model_type: str | None) -> int | None:
    """Stable bucket of an architecture family (crc32, not ``hash``, which changes between processes)."""
    if not model_type:
        return None
    return zlib.crc32(model_type.lower().encode("utf-8")) % FAMILY_BUCKETS


@lru_cache(maxsize=1)
def known_dataset_labels() -> dict[str, tuple[str, ...]]:
    """Label lists of datasets models are often trained on (``data/dataset_labels.json``), keyed by lower-case id."""
    path = Path(str(resources.files("hf_spider") / "data" / "dataset_labels.json"))
    return {k.lower(): tuple(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def ptm_tokens(
    records: Sequence[ModelRecord],
    *,
    text_encoder: str | None = None,
    embedder: TextEmbedder | None = None,
    known: Sequence[ModelRecord] | None = None,
) -> PTMTokens:
    """Content tokens of ``records`` (no forward pass of any of them).

    Args:
        records: the models.
        text_encoder: Hub id of the text encoder (default :data:`hf_spider.constants.DEFAULT_TEXT_ENCODER`).
        embedder: the embedder (and its per-string cache); the process-wide one of ``text_encoder`` if omitted.
        known: other records that lineage may walk through (default: the bundled index); ``records`` always count.

    Returns:
        :class:`PTMTokens` with one row per record, in order.
    """
    embedder = embedder or shared_embedder(text_encoder)
    lookup = {r.repo_id: r for r in (known if known is not None else _bundled_records())}
    lookup.update({r.repo_id: r for r in records})
    names = NameIndex(lookup)
    lineages = [_lineage(r, lookup, names) for r in records]
    facts = [_facts(r, lineage, lookup) for r, lineage in zip(records, lineages, strict=True)]
    texts = [_model_texts(r) for r in records]
    embedder.embed_all({t for parts in texts for group in parts for t in group})
    dim = embedder.dim
    features = np.zeros((len(records), token_dim(dim)), dtype=np.float32)
    for row, (given, parts) in enumerate(zip(records, texts, strict=True)):
        record = _sized(given, facts[row])
        features[row, : len(SCALAR_NAMES)] = _scalars(record)
        bucket = family_bucket(record.model_type)
        if bucket is not None:
            features[row, len(SCALAR_NAMES) + bucket] = 1.0
        features[row, archi2vec_slice()] = archi2vec(record)
        features[row, metadata_slice()] = metadata_features(record, facts[row])
        for name, group in zip(TEXT_PARTS, parts, strict=True):
            features[row, text_slice(name, dim)] = embedder.mean(group)
    return PTMTokens(
        model_ids=tuple(r.repo_id for r in records),
        features=features,
        text_dim=dim,
        ancestors=tuple(lineages),
        facts=tuple(facts),
    )


def _sized(record: ModelRecord, facts: ImageNetFacts | None) -> ModelRecord:
    """``record`` with the parameter count of its ImageNet facts where its own files state none (a timm config
    without its card, a port naming its timm weights): size is the strongest single signal for an unseen model."""
    if record.num_parameters is not None or facts is None or facts.num_parameters is None:
        return record
    return replace(record, num_parameters=facts.num_parameters)


def _lineage(record: ModelRecord, lookup: Mapping[str, ModelRecord], names: NameIndex) -> tuple[str, ...]:
    """Declared ancestors, nearest first; else the known repo whose name starts this one's (a repo-name guess)."""
    declared = ancestors(record, lookup)
    if declared:
        return declared
    guess = inferred_base(record.repo_id, names)
    return (guess, *ancestors(lookup[guess], lookup)) if guess is not None else ()


def _facts(record: ModelRecord, lineage: Sequence[str], lookup: Mapping[str, ModelRecord]) -> ImageNetFacts | None:
    """The record's own ImageNet facts, else the nearest ancestor's (exact or card facts only: an architecture match
    says nothing the descendant's own architecture does not)."""
    own = facts_for(record)
    if own is not None and own.source != "architecture":
        return own
    for ancestor in lineage:
        found = facts_for(lookup.get(ancestor) or ModelRecord(ancestor))
        if found is not None and found.source != "architecture":
            return inherited(found, ancestor)
    return own


@lru_cache(maxsize=1)
def _bundled_records() -> tuple[ModelRecord, ...]:
    from ..hub.index import load_bundled_index

    return tuple(load_bundled_index())


@lru_cache(maxsize=4)
def shared_embedder(model_id: str | None = None) -> TextEmbedder:
    """One embedder per text encoder and process, so repeated rankings embed each label name once."""
    return TextEmbedder(model_id)


class TextEmbedder:
    """Embeds strings with the general text encoder, caching each unique string (labels repeat across models).

    The cache also lives on disk (``HF_SPIDER_CACHE/text_embeddings/<encoder>.npz``, written atomically), so the
    bundled zoo's ~2,000 label names are embedded once per machine, not once per ``hf-spider rank``. The package
    ships the default encoder's embeddings of the bundled index's strings (``data/text_embeddings``, rebuilt by
    ``scripts/build_text_embeddings.py``), so even a first ranking of the bundled pool encodes only the task.
    """

    def __init__(self, model_id: str | None = None, *, cache_dir: str | os.PathLike[str] | None = None) -> None:
        from ..constants import CACHE_DIR, DEFAULT_TEXT_ENCODER

        self.model_id = model_id
        encoder = model_id or DEFAULT_TEXT_ENCODER
        file_name = f"{re.sub(r'[^A-Za-z0-9.-]+', '--', encoder)}.npz"
        self.path = Path(cache_dir or CACHE_DIR / "text_embeddings") / file_name
        self.shipped_path = Path(str(resources.files("hf_spider") / "data" / "text_embeddings" / file_name))
        self._cache: dict[str, np.ndarray] = {}
        self._dim: int | None = None
        self._loaded = False

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_all({"model"})
        assert self._dim is not None
        return self._dim

    def embed_all(self, texts: set[str]) -> None:
        """Embed every string of ``texts`` not cached yet (one encoder call) and persist the new ones."""
        from .encoders import encode_texts

        self._load()
        new = sorted(t for t in texts if t not in self._cache)
        if not new and self._dim is not None:
            return
        vectors = encode_texts(new or ["model"], model_id=self.model_id)
        self._dim = int(vectors.shape[1])
        if new:
            self._cache.update(zip(new, vectors, strict=True))
            self._save()

    def mean(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised mean embedding of ``texts``; zeros when there are none (the scorer reads zeros as missing)."""
        if not texts:
            return np.zeros(self.dim, dtype=np.float32)
        self.embed_all(set(texts))
        vector = np.mean([self._cache[t] for t in texts], axis=0)
        norm = float(np.linalg.norm(vector))
        return (vector / norm if norm > 0 else vector).astype(np.float32)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for path in (self.shipped_path, self.path):  # the user's cache last: it wins
            try:
                with np.load(path, allow_pickle=False) as data:
                    vectors = data["vectors"]
                    self._cache.update(zip(data["texts"].tolist(), vectors, strict=True))
                if len(vectors):
                    self._dim = int(vectors.shape[1])
            except (OSError, KeyError, ValueError) as exc:  # absent or unreadable: a cache miss, never a wrong hit
                if path.exists():
                    logger.warning("ignoring unreadable text-embedding cache %s (%s)", path, exc)

    def _save(self) -> None:
        from ..hub.output_paths import atomic_write

        texts = sorted(self._cache)
        try:
            with atomic_write(self.path, mode="wb") as f:
                np.savez(f, texts=np.array(texts, dtype=str), vectors=np.stack([self._cache[t] for t in texts]))
        except OSError as exc:  # a read-only cache folder only costs speed
            logger.warning("could not write the text-embedding cache %s (%s)", self.path, exc)


def informative_labels(labels: Sequence[str] | None) -> list[str]:
    """Label names worth embedding: generic ``LABEL_3`` / ``class 7`` names say nothing about the classes."""
    return [lab for lab in labels or () if lab.strip() and not _GENERIC_LABEL.match(lab.strip())]


def _model_texts(record: ModelRecord) -> tuple[list[str], list[str], list[str]]:
    """The strings behind the three text parts: own labels, training datasets' labels (or names), card text."""
    known = known_dataset_labels()
    dataset_texts: list[str] = []
    for dataset in record.datasets or ():
        dataset_texts.extend(known.get(dataset.lower(), (dataset.replace("_", " "),)))
    card = (record.card_text or "").strip()[:_CARD_CHARS]
    return informative_labels(record.label_names), dataset_texts, [card] if card else []


def _scalars(record: ModelRecord) -> list[float]:
    """The :data:`SCALAR_NAMES` values, scaled to roughly unit range so no feature dominates at initialisation."""

    def present(value: float | None, scaled: float) -> tuple[float, float]:
        return (scaled, 1.0) if value is not None else (0.0, 0.0)

    params = present(record.num_parameters, math.log(record.num_parameters or 1) / 10.0 - 1.8)
    size = present(record.input_size, (record.input_size or 0) / 512.0)
    labels = informative_labels(record.label_names)
    accuracy = _card_accuracy(record)
    downloads = present(record.downloads, math.log1p(record.downloads or 0) / 10.0)
    likes = present(record.likes, math.log1p(record.likes or 0) / 5.0)
    return [
        *params,
        *size,
        math.log1p(len(record.label_names or ())) / 7.0,
        float(bool(labels)),
        float(bool(record.datasets)),
        float(bool(record.base_models)),
        *present(accuracy, accuracy or 0.0),
        *downloads,
        *likes,
        float(record.modality == "image"),
        float(record.modality == "text"),
    ]


def _card_accuracy(record: ModelRecord) -> float | None:
    """Best accuracy-like value (in [0, 1]) the card reports on the model's own task, ``None`` if none."""
    values = [
        r.value
        for r in record.eval_results or ()
        if r.value is not None and 0.0 <= r.value <= 1.0 and (r.metric or "accuracy").lower() in ("accuracy", "acc")
    ]
    return max(values) if values else None
