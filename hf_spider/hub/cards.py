"""Model cards, ``config.json`` and the model-info API into plain :class:`ModelRecord` fields.

Card metadata becomes ``huggingface_hub``'s ``ModelCardData`` (and its ``EvalResult`` parsing of ``model-index``), so
we read cards as the Hub client does. Only the YAML loading is ours: the client's ``yaml.safe_load`` has no limit,
and a few hundred bytes of nested aliases (a "billion laughs" card) expand into billions of values once anything
walks them. :func:`load_card_metadata` checks the expanded size, depth and recursion of the YAML before building a
single value (:class:`~hf_spider.hub.sanitize.HubLimits`). Parsers never raise on bad content: they return what they
could read plus an error string ``"<kind>: <what>; <fix>"`` that the crawler stores in ``ModelRecord.error`` and
``hf-spider index stats`` counts by kind. Values come back as the YAML or JSON gave them; every record is then passed
through :func:`~hf_spider.hub.sanitize.sanitize_record` (escaping, caps, JSON types), as
:func:`record_from_model_info` does.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from .layouts import derive_fields, layout_fields, merge_fields, sentence_transformers_fields
from .records import ERROR_SEPARATOR, EvalResult, ModelRecord
from .sanitize import LIMITS, OVERSIZED, HubLimits, sanitize_record

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
    "unsafe_text",  # strings held control, bidi-override or unencodable characters; they are stored escaped
    "oversized",  # a file, card metadata, label list or string was over a HubLimits cap; it was cut or not read
    "bad_value",  # a field held a value no index row may hold (a negative count, a list for a tag, inf); dropped
    "transient",  # retries ran out (429, 5xx, timeouts); the next crawl fetches the model again
)
#: Error kinds that mean a repo was not read: what the model is (its config, its weights) is unknown, or it is gone.
#: Such a record is known by its size at most, so a ranker would score it as an average model, above real ones;
#: :func:`unread_reason` is what ranking uses to list it last instead (see :func:`hf_spider.ranking.rank`).
UNREAD_KINDS = ("bad_config", "bad_weights", "not_found", "invalid_id")
#: The files of a sentence-transformers repo that describe it (modules, library version, sequence length).
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")
# Card keys that map to record fields; everything else goes to ``extra``.
_MODELLED_CARD_KEYS = frozenset(
    {"license", "language", "datasets", "base_model", "model-index", "model_name", "pipeline_tag", "library_name"}
    | {"tags", "eval_results"}
)


class MetadataTooLargeError(ValueError):
    """Card metadata over a :class:`~hf_spider.hub.sanitize.HubLimits` cap; the message says which, after "README.md
    metadata"."""


def load_card_metadata(yaml_text: str, *, limits: HubLimits = LIMITS) -> Any:
    """The value of a card's YAML header, loaded safely (``SafeLoader``) and only if it stays within ``limits``.

    The YAML is first composed into its node graph, where an alias is one shared node, so composing costs what the
    text costs. The values it would expand to are counted on that graph (each shared node once, times its uses) and
    the load is refused above ``limits.yaml_nodes`` values, ``limits.depth`` levels, or for an alias that contains
    itself; only then are Python values built.

    Raises:
        MetadataTooLargeError: over a limit (text size, expanded values, depth, recursive alias).
        yaml.YAMLError: not valid YAML.
    """
    import yaml

    if len(yaml_text) > limits.metadata_chars:
        raise MetadataTooLargeError(f"is {len(yaml_text)} characters long (limit {limits.metadata_chars})")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(yaml_text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError as exc:
            raise MetadataTooLargeError(f"nests deeper than {limits.depth} levels") from exc
        if node is None:
            return None
        _check_expansion(node, limits)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: Any, limits: HubLimits) -> None:
    """Raise :class:`MetadataTooLargeError` if the node graph under ``root`` expands past ``limits``."""
    import yaml

    expanded: dict[int, tuple[int, int]] = {}  # id(node) -> (values it expands to, levels below it)
    open_nodes: set[int] = set()

    def visit(node: Any, level: int) -> tuple[int, int]:
        if level > limits.depth:
            raise MetadataTooLargeError(f"nests deeper than {limits.depth} levels")
        key = id(node)
        if key in expanded:
            size, below = expanded[key]
            if level + below > limits.depth:
                raise MetadataTooLargeError(f"nests deeper than {limits.depth} levels")
            return size, below
        if key in open_nodes:
            raise MetadataTooLargeError("holds an alias that contains itself")
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        size, below = 1, 0
        for child in children:
            child_size, child_below = visit(child, level + 1)
            size += child_size
            below = max(below, child_below + 1)
            if size > limits.yaml_nodes:
                raise MetadataTooLargeError(f"expands to more than {limits.yaml_nodes} values (YAML aliases)")
        open_nodes.discard(key)
        expanded[key] = (size, below)
        return size, below

    visit(root, 1)


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
        "extra": extra,  # as YAML gave it (dates, ...): sanitize_record makes it JSON-safe
        "pipeline_tag": _str_or_none(raw.get("pipeline_tag")),
        "library_name": _str_or_none(raw.get("library_name")),
    }


def parse_card(raw: bytes | str, *, limits: HubLimits = LIMITS) -> tuple[dict[str, Any], str | None]:
    """Fields of a README.md (its metadata and ``card_text``) and an error string when the card is unusable.

    A card with malformed or oversized metadata keeps its prose in ``card_text``; a card without metadata is not an
    error of the file itself but is reported as ``no_card_metadata`` so ``index stats`` can count such models.
    """
    import yaml
    from huggingface_hub import ModelCardData
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return {}, f"malformed_card: README.md is not UTF-8 ({exc.reason}); re-save the card as UTF-8"
    match = REGEX_YAML_BLOCK.search(text)
    if match is None:  # as the client: no complete front-matter block, no metadata
        return {"card_text": text}, _NO_METADATA
    prose = text[match.end() :]
    try:
        data = load_card_metadata(match.group(2), limits=limits)
    except MetadataTooLargeError as exc:
        return {"card_text": prose}, f"{OVERSIZED}: README.md metadata {exc}; it was not read, shorten it"
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())[:200]
        return {"card_text": prose}, f"malformed_card: README.md metadata does not parse ({reason}); fix it"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {"card_text": prose}, (
            f"malformed_card: README.md metadata is a {type(data).__name__}, not a mapping; fix it"
        )
    data = {str(k): v for k, v in data.items()}  # YAML allows any key; ModelCardData takes keyword arguments
    try:
        card_data = ModelCardData(**data, ignore_metadata_errors=False)
    except Exception as exc:  # the client's parsing of hostile metadata raises ValueError, TypeError, KeyError...
        reason = " ".join(str(exc).split())[:200]
        try:  # the YAML may parse with only model-index unreadable: keep the rest
            card_data = ModelCardData(**data, ignore_metadata_errors=True)
        except Exception:
            return {"card_text": prose}, f"malformed_card: README.md metadata does not parse ({reason}); fix it"
        return {**card_data_fields(card_data), "card_text": prose}, f"malformed_card: {reason}; fix the card"
    fields = {**card_data_fields(card_data), "card_text": prose}
    return fields, None if data else _NO_METADATA


_NO_METADATA = "no_card_metadata: README.md has no YAML metadata; add a '---' header with license and datasets"


def config_fields(
    raw: bytes | str | dict[str, Any], *, limits: HubLimits = LIMITS
) -> tuple[dict[str, Any], str | None]:
    """Architectures, model type, label names (``id2label`` in id order) and input size from ``config.json``.

    A config nesting deeper than ``limits.depth`` is not read (``oversized``): real ones nest a few levels, and only
    a hostile one needs its depth to be walked by everything that touches it later.
    """
    if isinstance(raw, dict):
        config: Any = raw
    else:
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return {}, f"bad_config: config.json is not valid JSON ({exc}); fix or remove it"
        except RecursionError:
            return {}, f"{OVERSIZED}: config.json nests deeper than {limits.depth} levels; it was not read"
    if not isinstance(config, dict):
        return {}, f"bad_config: config.json holds a {type(config).__name__}, not an object; fix or remove it"
    if _nests_deeper(config, limits.depth):
        return {}, f"{OVERSIZED}: config.json nests deeper than {limits.depth} levels; it was not read"
    out: dict[str, Any] = {}
    if isinstance(config.get("architectures"), list):
        out["architectures"] = tuple(_label(a) for a in config["architectures"])
    if isinstance(config.get("model_type"), str):
        out["model_type"] = config["model_type"]
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        with contextlib.suppress(ValueError):  # ids that are not integers: the order is unknown, so no label names
            out["label_names"] = tuple(_label(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0])))
    size = config.get("image_size", config.get("max_position_embeddings"))
    if isinstance(size, list) and size:
        size = size[0]
    if isinstance(size, int) and not isinstance(size, bool):
        out["input_size"] = size
    out.update(layout_fields(config))  # timm / timm_wrapper configs, head size, the model it was saved from
    return out, None


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether a JSON value nests more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def _label(value: Any) -> str:
    """A label or architecture name as text; a nested value is not a name and becomes its type in brackets."""
    return f"<{type(value).__name__}>" if isinstance(value, (dict, list)) else str(value)


def repo_file_fields(
    files: dict[str, tuple[bytes, bool]], *, limits: HubLimits = LIMITS
) -> tuple[dict[str, Any], list[str]]:
    """Record fields from a repo's ``README.md``, ``config.json`` and sentence-transformers files
    (:data:`SENTENCE_TRANSFORMERS_FILES`), and the errors found reading them.

    Args:
        files: ``{filename: (content, cut)}`` for the files there are; ``cut`` says the content stops at
            ``limits.file_bytes`` (the file is larger). A cut card is read from its start; a cut config is not read,
            as JSON cut short cannot be.
        limits: the caps.
    """
    fields: dict[str, Any] = {}
    errors: list[str] = []
    if "README.md" in files:
        raw, cut = files["README.md"]
        card, card_error = parse_card(raw, limits=limits)
        fields.update(card)
        errors += [card_error or "", _cut_error("README.md", limits, "only its start was read") if cut else ""]
    if "config.json" in files:
        raw, cut = files["config.json"]
        if cut:
            errors.append(_cut_error("config.json", limits, "it was not read"))
        else:
            config, config_error = config_fields(raw, limits=limits)
            fields = merge_fields(fields, config)
            errors.append(config_error or "")
    if "modules.json" in files:  # a sentence-transformers repo; its small JSON files are read when whole
        parsed = [_json_or_none(*files[name]) if name in files else None for name in SENTENCE_TRANSFORMERS_FILES]
        fields = merge_fields(fields, sentence_transformers_fields(*parsed))
    return fields, errors


def _json_or_none(raw: bytes, cut: bool) -> Any:
    """A small JSON file's content, ``None`` when cut short or not JSON (that layout is then simply not read)."""
    try:
        return None if cut else json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _cut_error(filename: str, limits: HubLimits, what: str) -> str:
    return f"{OVERSIZED}: {filename} is larger than {limits.file_bytes} bytes; {what}"


def read_head(path: str | os.PathLike[str], *, limits: HubLimits = LIMITS) -> tuple[bytes, bool]:
    """The first ``limits.file_bytes`` of a local file and whether it is longer (the rest is never read)."""
    with open(path, "rb") as f:
        data = f.read(limits.file_bytes + 1)
    return data[: limits.file_bytes], len(data) > limits.file_bytes


def record_from_model_info(info: ModelInfo, *, limits: HubLimits = LIMITS) -> ModelRecord:
    """A sanitised record from what the model-info or listing API sent (with ``expand``); unsent fields stay ``None``.

    Never raises on what the Hub sent: card data that cannot be read leaves the API fields with a ``malformed_card``
    error.
    """
    try:
        fields: dict[str, Any] = card_data_fields(info.card_data) if info.card_data is not None else {}
        card_error = None
    except Exception as exc:  # hostile card data the client accepted but its to_dict / eval results do not
        fields, card_error = {}, f"malformed_card: the Hub's card data does not parse ({type(exc).__name__}); fix it"
    if isinstance(info.config, dict):
        fields.update(config_fields(info.config, limits=limits)[0])
    fields["pipeline_tag"] = info.pipeline_tag or fields.get("pipeline_tag")
    fields["library_name"] = info.library_name or fields.get("library_name")
    record = ModelRecord(
        repo_id=info.id,
        sha=info.sha,
        num_parameters=info.safetensors.total if info.safetensors is not None else None,
        gated=bool(info.gated) if info.gated is not None else None,
        downloads=info.downloads,
        likes=info.likes,
        created_at=info.created_at.isoformat() if info.created_at else None,
        last_modified=info.last_modified.isoformat() if info.last_modified else None,
        tags=_tags(info.tags),
        error=card_error,
        **fields,
    )
    return sanitize_record(derive_fields(record), limits=limits)


def error_kinds(error: str | None) -> list[str]:
    """The kinds named in a record's ``error`` (see :data:`ERROR_KINDS`), each once, in order of first mention."""
    if not error:
        return []
    kinds = [part.split(":", 1)[0].strip() for part in error.split(ERROR_SEPARATOR)]
    return list(dict.fromkeys(k for k in kinds if k in ERROR_KINDS))


def unread_reason(error: str | None) -> str | None:
    """Why a record's repo could not be read: the parts of its ``error`` of an :data:`UNREAD_KINDS` kind, and an
    ``oversized`` config.json (too large or too deep to be read); ``None`` for a repo that was read."""
    if not error:
        return None
    parts = [
        part
        for part in error.split(ERROR_SEPARATOR)
        if part.split(":", 1)[0].strip() in UNREAD_KINDS or part.startswith(f"{OVERSIZED}: config.json")
    ]
    return ERROR_SEPARATOR.join(parts) or None


def _tags(value: Any) -> tuple[str, ...] | None:
    """The Hub's tags without the items that are not strings: ``"tags": [5]`` names no tag, and every reader of tags
    (``base_model:`` and ``dataset:`` prefixes) expects text; anything but a list is no list of tags."""
    if not isinstance(value, list | tuple):
        return None
    return tuple(tag for tag in value if isinstance(tag, str))


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
