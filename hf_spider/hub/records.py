"""What the Hub says about one pre-trained model, as a frozen, serialisable dataclass.

Like ``huggingface_hub.ModelInfo``, every field is optional because the Hub's answer depends on the query: a field the
Hub did not send stays ``None`` (never ``0`` or ``""``). Card metadata we do not model goes into ``extra``.
The schema is documented in ``docs/schema.md``; ``SCHEMA_VERSION`` is bumped whenever a field changes meaning.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

#: 2: ``pretrained_tag``, ``pretraining``, ``num_labels``, ``gmacs``, ``imagenet_top1``; base models also from
#: ``base_model:`` tags and ``config.json`` ``_name_or_path``; timm and sentence-transformers layouts
#: (``hub/layouts.py``).
SCHEMA_VERSION = 2

# Fields stored as JSON text in Parquet because their values are heterogeneous (nested dicts of any shape).
_JSON_COLUMNS = ("eval_results", "extra")
_TUPLE_FIELDS = ("architectures", "label_names", "datasets", "base_models", "languages", "tags", "pretraining")
#: Joins several errors of one record into ``ModelRecord.error``.
ERROR_SEPARATOR = " | "


@dataclass(frozen=True)
class EvalResult:
    """One ``model-index`` result of a model card: what the author measured, on which dataset."""

    dataset: str | None
    metric: str | None
    value: float | None
    task: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """One pre-trained model as the Hub describes it (model-info API, ``config.json`` and model card).

    Args:
        repo_id: the Hub repo id, e.g. ``"google/vit-base-patch16-224"``.
        sha: the revision the record was read at; ranking and re-ranking pin this revision.
        pipeline_tag: the Hub's task tag (``"image-classification"``, ``"text-classification"``, ...).
        library_name: ``"transformers"``, ``"timm"``, ...
        architectures: ``config.json`` ``architectures`` (a timm repo: its timm architecture, e.g. ``"resnet50"``).
        model_type: ``config.json`` ``model_type`` (the architecture family; a timm repo: the family of its
            architecture, e.g. ``"resnet"``).
        num_parameters: parameter count (safetensors metadata or header), ``None`` when unknown.
        input_size: image side in pixels (image models) or maximum sequence length (text models).
        label_names: the model's own output labels, ordered by id (``config.json`` ``id2label``).
        datasets: datasets the model was trained or fine-tuned on (card ``datasets``).
        base_models: models it descends from: card ``base_model``, ``base_model:`` tags, ``config.json``
            ``_name_or_path`` (lineage; see :mod:`hf_spider.tokens.lineage`).
        eval_results: the card's ``model-index`` results.
        license, languages, gated, downloads, likes, created_at, last_modified: Hub metadata as sent.
        card_text: the model card's prose, without its YAML header.
        tags: the Hub tags.
        error: why part of the record is missing (a gated repo, a malformed card, ...), ``None`` when complete.
        extra: card metadata this schema does not model, kept as it came.
        pretrained_tag: a timm repo's pretrained tag (``"a1_in1k"`` of ``timm/resnet50.a1_in1k``).
        pretraining: what the weights were pre-trained and fine-tuned on, normalised, in the order they are named
            (``("laion-2b", "imagenet-12k", "imagenet-1k")``); see :mod:`hf_spider.hub.pretraining`.
        num_labels: outputs of the model's classification head (``num_classes`` / ``id2label``).
        gmacs: multiply-accumulates per image in billions, as the card states.
        imagenet_top1: ImageNet-1k top-1 accuracy in percent, as the card states (prose table or ``model-index``).
    """

    repo_id: str
    sha: str | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    architectures: tuple[str, ...] | None = None
    model_type: str | None = None
    num_parameters: int | None = None
    input_size: int | None = None
    label_names: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None
    base_models: tuple[str, ...] | None = None
    eval_results: tuple[EvalResult, ...] | None = None
    license: str | None = None
    languages: tuple[str, ...] | None = None
    gated: bool | None = None
    downloads: int | None = None
    likes: int | None = None
    created_at: str | None = None
    last_modified: str | None = None
    card_text: str | None = None
    tags: tuple[str, ...] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pretrained_tag: str | None = None
    pretraining: tuple[str, ...] | None = None
    num_labels: int | None = None
    gmacs: float | None = None
    imagenet_top1: float | None = None

    @property
    def modality(self) -> str | None:
        """``"image"`` or ``"text"``: from the pipeline tag, else inferred from the library and the architecture
        family (a timm repo is an image model, a sentence-transformers repo a text model); ``None`` if unknown."""
        return modality_of_pipeline_tag(self.pipeline_tag) or inferred_modality(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists) carrying ``schema_version``."""
        out = asdict(self)
        for name in _TUPLE_FIELDS:
            if out[name] is not None:
                out[name] = list(out[name])
        if out["eval_results"] is not None:
            out["eval_results"] = [dict(r) for r in out["eval_results"]]
        out["schema_version"] = SCHEMA_VERSION
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        """Inverse of :meth:`to_dict`; unknown keys go into ``extra`` rather than failing.

        Every field passes :func:`field_value`, the rule the crawler's records pass too before they are written.

        Raises:
            ValueError: ``repo_id`` is missing, ``schema_version`` is newer than this library understands, or a
                field holds a value it cannot (see :func:`field_value`).
        """
        data = dict(data)
        version = _schema_version(data.pop("schema_version", SCHEMA_VERSION))
        if version is not None and version > SCHEMA_VERSION:
            raise ValueError(
                f"record schema_version {version} is newer than {SCHEMA_VERSION}; upgrade hf-spider to read it"
            )
        if not data.get("repo_id"):
            raise ValueError("record has no 'repo_id'; every row of an index needs the model's Hub repo id")
        known = _field_names()
        extra = dict(data.pop("extra", None) or {})
        extra.update({k: data.pop(k) for k in list(data) if k not in known})
        data = {name: field_value(name, value) for name, value in data.items()}
        record = cls(**data, extra=extra)
        if version is not None and version < SCHEMA_VERSION:  # fill what older writers did not derive
            from .layouts import upgrade_record

            record = upgrade_record(record)
        return record

    def to_row(self) -> dict[str, Any]:
        """A flat row for Parquet: nested, heterogeneous fields are JSON text (see ``docs/schema.md``)."""
        row = self.to_dict()
        for name in _JSON_COLUMNS:
            row[name] = json.dumps(row[name], sort_keys=True) if row[name] is not None else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelRecord:
        """Inverse of :meth:`to_row` (also accepts the lists that pyarrow returns as numpy arrays)."""
        data = {k: _plain(v) for k, v in row.items()}
        for name in _JSON_COLUMNS:
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name])
        return cls.from_dict(data)


#: Fields that count something: whole numbers, never negative.
_COUNT_FIELDS = ("num_parameters", "input_size", "downloads", "likes", "num_labels")


def field_value(name: str, value: Any) -> Any:
    """``value`` as the field ``name`` of a :class:`ModelRecord` holds it: a list as a tuple of strings, a count as an
    ``int``, a dict of ``eval_results`` as an :class:`EvalResult`.

    The one rule of what a record may hold, applied both ways: :meth:`ModelRecord.from_dict` applies it to every row
    of an index it reads, and :func:`~hf_spider.hub.sanitize.sanitize_record` to every record the crawler makes
    (dropping what it refuses, with a note), so a crawl never writes a row that a later read would refuse and that
    would make the whole index unreadable.

    Raises:
        ValueError: ``value`` cannot be that field: a string or number where a list belongs, a negative, infinite
            or non-numeric count, a negative, infinite or NaN measure (``gmacs``, ``imagenet_top1``) or card result
            value, a list where a string, number or flag belongs.
    """
    if value is None:
        return None
    if name in _TUPLE_FIELDS:
        if not isinstance(value, list | tuple):  # a string would be read as a list of its characters
            raise ValueError(f"'{name}' must be a list, got {type(value).__name__}")
        return tuple(str(v) for v in value)
    if name == "eval_results":
        if not isinstance(value, list | tuple) or not all(isinstance(r, dict | EvalResult) for r in value):
            raise ValueError("'eval_results' must be a list of objects with dataset, metric and value")
        try:
            results = tuple(r if isinstance(r, EvalResult) else EvalResult(**r) for r in value)
        except TypeError as exc:
            raise ValueError(f"'eval_results' holds a result that is not one ({exc})") from exc
        return tuple(_eval_result(r) for r in results)
    if name in _COUNT_FIELDS:
        return _count(name, value)
    kind = _scalar_fields().get(name)
    if kind == "float" and _is_number(value):
        measure = finite_number(value, f"'{name}'")
        if measure < 0:  # gmacs and imagenet_top1 measure something; log10 of a negative gmacs raised
            raise ValueError(f"'{name}' is {measure}; a measure is never negative")
        return measure
    if kind == "bool" and type(value).__name__ in ("bool", "bool_"):  # numpy's from a Parquet index
        return bool(value)
    if kind is not None and (kind != "str" or not isinstance(value, str)):
        word = {"str": "a string", "float": "a number", "bool": "true or false"}[kind]
        raise ValueError(f"'{name}' must be {word}, got {type(value).__name__}")
    return value


def checked_record(record: ModelRecord) -> ModelRecord:
    """``record`` with every field passed through :func:`field_value`: a record built by hand (the Python API's
    ``candidates=[ModelRecord(...)]``) is held to the rule every index row is read with, so a count given as
    ``"1e8"`` or tags given as one string is refused where it enters, not as a ``TypeError`` deep inside ranking.

    Raises:
        ValueError: ``repo_id`` is no non-empty string, or a field holds a value it cannot (:func:`field_value`).
    """
    if not isinstance(record.repo_id, str) or not record.repo_id.strip():
        raise ValueError(f"'repo_id' must be a non-empty string, got {record.repo_id!r}")
    names = _field_names() - {"repo_id", "extra"}
    return replace(record, **{name: field_value(name, getattr(record, name)) for name in names})


def _count(name: str, value: Any) -> int:
    """A count field's value as an ``int`` (a Parquet column may hold it as a float), refused when negative or when
    it is no whole number (``Infinity``, ``1e400``, a list)."""
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"'{name}' is {str(value)[:40]}, not a whole number; a count must be one") from None
    if count < 0:
        raise ValueError(f"'{name}' is {count}; a count is never negative")
    return count


def _is_number(value: Any) -> bool:
    """An ``int`` or ``float`` (NumPy's too), but not a flag: ``True`` is an ``int`` to Python, never a measure."""
    return type(value).__name__ not in ("bool", "bool_") and isinstance(value, int | float)


def finite_number(value: Any, what: str) -> float:
    """``value`` as a ``float``, refused when infinite or NaN (``what`` names it in the message): JSON Lines as
    Python's ``json`` reads it takes ``Infinity``, ``NaN`` and ``1e400`` (inf), a Parquet float column holds inf, and
    an integer of 400 digits has no float. The records folder of ``build-records`` reads its pairs by this rule too.

    Raises:
        ValueError: ``value`` is infinite, NaN, or an integer beyond float range (``float`` itself raises
            ``TypeError`` / ``ValueError`` for what is no number).
    """
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{what} is {str(value)[:40]}, not a finite number")
    return number


def _eval_result(result: EvalResult) -> EvalResult:
    """A card result whose value is a finite ``float`` or ``None`` and whose names are strings or ``None``.

    The PTM token compares each value with 0 and 1 and lower-cases the metric: a string value, or a list for a
    metric, raised ``TypeError`` / ``AttributeError`` there, long after the index was read.
    """
    for key in ("dataset", "metric", "task", "split"):
        text = getattr(result, key)
        if text is not None and not isinstance(text, str):
            raise ValueError(f"'eval_results' holds a {key} that is {type(text).__name__}, not a string")
    if result.value is None:
        return result
    if not _is_number(result.value):
        raise ValueError(f"'eval_results' holds a value that is {type(result.value).__name__}, not a number")
    return replace(result, value=finite_number(result.value, "a value in 'eval_results'"))


def _schema_version(value: Any) -> int | None:
    """A record's ``schema_version`` as an ``int`` (``None`` when the row has none)."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"'schema_version' is {str(value)[:40]}, not a whole number") from None


@lru_cache(maxsize=1)
def _scalar_fields() -> dict[str, str]:
    """The fields of :class:`ModelRecord` that hold one string, number or flag (or ``None``) -> ``"str"``, ``"float"``
    or ``"bool"`` (the counts are converted with ``int()`` before)."""
    kinds = {"str": "str", "str | None": "str", "float | None": "float", "bool | None": "bool"}
    return {f.name: kinds[str(f.type)] for f in fields(ModelRecord) if str(f.type) in kinds}


@lru_cache(maxsize=1)
def _field_names() -> frozenset[str]:
    """The fields of :class:`ModelRecord` (``dataclasses.fields`` walks them on every call; a pool reads thousands)."""
    return frozenset(f.name for f in fields(ModelRecord))


def modality_of_pipeline_tag(pipeline_tag: str | None) -> str | None:
    """Map a Hub pipeline tag to the modality of its inputs (``"image"`` / ``"text"``), ``None`` if neither."""
    if pipeline_tag is None:
        return None
    if pipeline_tag.startswith("image-") or pipeline_tag in {"zero-shot-image-classification", "object-detection"}:
        return "image"
    if pipeline_tag in {
        "text-classification",
        "token-classification",
        "fill-mask",
        "feature-extraction",
        "sentence-similarity",
        "zero-shot-classification",
        "question-answering",
        "text-generation",
    }:
        return "text"
    return None


#: Architecture families whose inputs are images or texts, for records without a pipeline tag.
_IMAGE_LIBRARIES = frozenset({"timm", "open_clip"})
_TEXT_LIBRARIES = frozenset({"sentence-transformers", "setfit"})


def inferred_modality(record: ModelRecord) -> str | None:
    """The modality of a record without a usable pipeline tag: its library, then its architecture family."""
    from .layouts import family_modality

    if record.library_name in _IMAGE_LIBRARIES:
        return "image"
    if record.library_name in _TEXT_LIBRARIES:
        return "text"
    for tag in record.tags or ():
        if tag in _IMAGE_LIBRARIES or modality_of_pipeline_tag(tag) == "image":
            return "image"
        if tag in _TEXT_LIBRARIES or modality_of_pipeline_tag(tag) == "text":
            return "text"
    modality = family_modality(record.model_type)
    if modality is None:
        heads = [
            a for a in record.architectures or () if a.endswith(("ForImageClassification", "ForSequenceClassification"))
        ]
        modality = ("image" if heads[0].endswith("ImageClassification") else "text") if heads else None
    return modality


def _plain(value: Any) -> Any:
    """Turn pyarrow/numpy containers and NaN into plain Python values."""
    if value is None or type(value) in (str, int, bool, list, dict):  # most cells: no attribute look-up (a pool
        return value  # of thousands of records has tens of thousands of cells)
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value != value:  # NaN from a missing pandas cell
        return None
    return value


def join_errors(errors: list[str]) -> str | None:
    """Several error strings as one ``ModelRecord.error`` (``None`` when there is none)."""
    kept = [e for e in errors if e]
    return ERROR_SEPARATOR.join(dict.fromkeys(kept)) or None
