"""Model cards, ``config.json`` and the model-info API into plain :class:`ModelRecord` fields.

Card YAML goes through ``huggingface_hub`` (``ModelCard``, ``ModelCardData``, its ``EvalResult`` parsing of
``model-index``), never through YAML handling of our own, so we read cards exactly as the Hub client does. Parsers
never raise on bad content: they return what they could read plus an error string ``"<kind>: <what>; <fix>"`` that
the crawler stores in ``ModelRecord.error`` and ``hf-spider index stats`` counts by kind.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from .layouts import derive_fields, layout_fields
from .records import EvalResult, ModelRecord

if TYPE_CHECKING:
    from huggingface_hub import CardData, ModelInfo

#: Error kinds a record can carry (the text before the first ``:`` of each :data:`ERROR_SEPARATOR`-separated part).
ERROR_KINDS = (
    "gated",  # the files need accepted terms (401/403 GatedRepo)
    "not_found",  # deleted, private or renamed between listing and fetching
    "invalid_id",  # the id cannot be a Hub repo id
    "malformed_card",  # README.md metadata is not valid YAML or not a mapping
    "no_card_metadata",  # README.md has no YAML header
    "bad_config",  # config.json is not a JSON object
    "bad_weights",  # a .safetensors file has no readable header
    "transient",  # retries ran out (429, 5xx, timeouts); the next crawl fetches the model again
)
#: Joins several errors of one record into ``ModelRecord.error``.
ERROR_SEPARATOR = " | "
# Card keys that map to record fields; everything else goes to ``extra``.
_MODELLED_CARD_KEYS = frozenset(
    {"license", "language", "datasets", "base_model", "model-index", "model_name", "pipeline_tag", "library_name"}
    | {"tags", "eval_results"}
)


def card_data_fields(data: CardData) -> dict[str, Any]:
    """Record fields from parsed card metadata: datasets, base models, license, languages, eval results, extra."""
    raw = data.to_dict()
    results = tuple(
        EvalResult(
            dataset=r.dataset_type,
            metric=r.metric_type,
            value=_float_or_none(r.metric_value),
            task=r.task_type,
            split=r.dataset_split,
        )
        for r in (getattr(data, "eval_results", None) or [])
    )
    license_ = raw.get("license")
    extra = {k: v for k, v in raw.items() if k not in _MODELLED_CARD_KEYS}
    return {
        "datasets": _strings(raw.get("datasets")),
        "base_models": _strings(raw.get("base_model")),
        "license": ",".join(license_) if isinstance(license_, list) else _str_or_none(license_),
        "languages": _strings(raw.get("language")),
        "eval_results": results or None,
        "extra": json.loads(json.dumps(extra, default=str)),  # YAML dates and the like become plain strings
        "pipeline_tag": _str_or_none(raw.get("pipeline_tag")),
        "library_name": _str_or_none(raw.get("library_name")),
    }


def parse_card(raw: bytes | str) -> tuple[dict[str, Any], str | None]:
    """Fields of a README.md (its metadata and ``card_text``) and an error string when the card is unusable.

    A card with malformed metadata keeps its prose in ``card_text``; a card without metadata is not an error of the
    file itself but is reported as ``no_card_metadata`` so ``index stats`` can count such models.
    """
    import yaml
    from huggingface_hub import ModelCard

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return {}, f"malformed_card: README.md is not UTF-8 ({exc.reason}); re-save the card as UTF-8"
    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except (ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())[:200]
        try:  # the YAML may parse with only model-index unreadable: keep the rest
            card = ModelCard(text, ignore_metadata_errors=True)
        except (ValueError, yaml.YAMLError):
            return {"card_text": _prose(text)}, f"malformed_card: README.md metadata does not parse ({reason}); fix it"
        return {**card_data_fields(card.data), "card_text": card.text}, f"malformed_card: {reason}; fix the card"
    fields = {**card_data_fields(card.data), "card_text": card.text}
    if not text.lstrip().startswith("---") or not card.data.to_dict():
        return fields, "no_card_metadata: README.md has no YAML metadata; add a '---' header with license and datasets"
    return fields, None


def config_fields(raw: bytes | str | dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Architectures, model type, label names (``id2label`` in id order) and input size from ``config.json``."""
    if isinstance(raw, dict):
        config: Any = raw
    else:
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return {}, f"bad_config: config.json is not valid JSON ({exc}); fix or remove it"
    if not isinstance(config, dict):
        return {}, f"bad_config: config.json holds a {type(config).__name__}, not an object; fix or remove it"
    out: dict[str, Any] = {}
    if isinstance(config.get("architectures"), list):
        out["architectures"] = tuple(str(a) for a in config["architectures"])
    if isinstance(config.get("model_type"), str):
        out["model_type"] = config["model_type"]
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        with contextlib.suppress(ValueError):  # ids that are not integers: the order is unknown, so no label names
            out["label_names"] = tuple(str(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0])))
    size = config.get("image_size", config.get("max_position_embeddings"))
    if isinstance(size, list) and size:
        size = size[0]
    if isinstance(size, int) and not isinstance(size, bool):
        out["input_size"] = size
    out.update(layout_fields(config))  # timm / timm_wrapper configs, head size, the model it was saved from
    return out, None


def record_from_model_info(info: ModelInfo) -> ModelRecord:
    """A record from what the model-info or listing API sent (with ``expand``); unsent fields stay ``None``."""
    fields: dict[str, Any] = card_data_fields(info.card_data) if info.card_data is not None else {}
    if isinstance(info.config, dict):
        fields.update(config_fields(info.config)[0])
    fields["pipeline_tag"] = info.pipeline_tag or fields.get("pipeline_tag")
    fields["library_name"] = info.library_name or fields.get("library_name")
    return derive_fields(
        ModelRecord(
            repo_id=info.id,
            sha=info.sha,
            num_parameters=info.safetensors.total if info.safetensors is not None else None,
            gated=bool(info.gated) if info.gated is not None else None,
            downloads=info.downloads,
            likes=info.likes,
            created_at=info.created_at.isoformat() if info.created_at else None,
            last_modified=info.last_modified.isoformat() if info.last_modified else None,
            tags=tuple(info.tags) if info.tags is not None else None,
            **fields,
        )
    )


def join_errors(errors: list[str]) -> str | None:
    """Several error strings as one ``ModelRecord.error`` (``None`` when there is none)."""
    kept = [e for e in errors if e]
    return ERROR_SEPARATOR.join(dict.fromkeys(kept)) or None


def error_kinds(error: str | None) -> list[str]:
    """The kinds named in a record's ``error`` (see :data:`ERROR_KINDS`), in order."""
    if not error:
        return []
    kinds = [part.split(":", 1)[0].strip() for part in error.split(ERROR_SEPARATOR)]
    return [k for k in kinds if k in ERROR_KINDS]


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _prose(text: str) -> str:
    """The text after a front-matter block, for cards whose metadata cannot be parsed at all."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip("\n")
    return text
