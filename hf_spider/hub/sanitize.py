"""Strings and values from the Hub made safe to store, print and push: the one boundary every Hub value passes.

Anyone can upload anything to the Hub, and the API passes it on as it came. Three kinds of content hurt a crawler
that keeps it as is:

* **unencodable text**: JSON may hold a lone surrogate (``"\\ud83d"``), which no UTF-8 writer accepts, so one label
  name can stop a journal or an index write;
* **control and bidi-override characters**: an ANSI escape in a tag rewrites the terminal that prints it, and an RTL
  override (U+202E) makes ``cat\\u202egpj.exe`` display as something else (the "Trojan Source" characters);
* **size**: a 5 MB card, 20,000 labels or metadata nested hundreds deep cost memory and index space in every row.

:func:`sanitize_value` is the reusable rule for one value of any shape: unsafe characters are written out as
``\\uXXXX`` (lossless, and idempotent: a sanitised value passes unchanged), strings, lists, nesting and the number of
nested values are capped (:class:`HubLimits`), and types JSON cannot hold become strings. :func:`sanitize_record`
applies it to every field of a :class:`~hf_spider.hub.records.ModelRecord` (so a field added later is covered without
a change here), drops a value that no index row may hold (a negative count, a list where a string belongs: the rule
:meth:`~hf_spider.hub.records.ModelRecord.from_dict` reads every row with, so the crawler never writes a row that
makes its index unreadable), and records what it changed twice: in ``extra["sanitised"]`` (one line per field) and as
error kinds ``unsafe_text`` / ``oversized`` / ``bad_value`` in ``error``, which ``hf-spider index stats`` counts.
:func:`escape_for_display` is the last line of defence before a terminal, a table or a collection note, for values
that never crossed this boundary.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any

from .records import ERROR_SEPARATOR, field_value, join_errors

if TYPE_CHECKING:
    from .records import ModelRecord

#: Error kind of a record whose strings held characters that are now stored escaped.
UNSAFE_TEXT = "unsafe_text"
#: Error kind of a record some of whose content was over a :class:`HubLimits` cap and was cut or not read.
OVERSIZED = "oversized"
#: Error kind of a record one of whose fields held a value no record can hold (a negative count, a list where a
#: string belongs, an infinite or NaN number); the field, or that number inside a structured one, was dropped to
#: ``None``.
BAD_VALUE = "bad_value"
#: ``ModelRecord.extra`` key listing what :func:`sanitize_record` changed, one line per field and kind.
SANITISED_KEY = "sanitised"

# C0 controls, DEL and C1 controls; the bidi embeddings, overrides and isolates (U+202A-E, U+2066-9); the line and
# paragraph separators (they break lines where a newline would); lone surrogates (unencodable in UTF-8).
_UNSAFE_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# The same in prose, where tabs and line breaks belong.
_UNSAFE_MULTILINE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_INT64 = 2**63


@dataclass(frozen=True)
class HubLimits:
    """What one record keeps of a Hub answer; anything beyond is cut and noted (error kind ``oversized``).

    Args:
        text_chars: characters of card prose (``card_text``). Real cards rarely pass 30,000; the PTM token reads the
            first 1,000.
        string_chars: characters of any other string (a label, a tag, a metadata value).
        items: items of a list or mapping (tags, datasets, a metadata list).
        labels: label names (``id2label``); ImageNet-1k has 1,000, ImageNet-21k 21,843.
        depth: nesting depth of a structured value (card metadata, ``config.json``); real ones nest about 6 deep.
        nodes: values inside one field, all levels together.
        file_bytes: bytes read of one README.md or ``config.json``; the rest is never downloaded.
        metadata_chars: characters of a card's YAML header parsed at all.
        yaml_nodes: values a card's YAML header may expand to, aliases expanded (a "billion laughs" card nests
            aliases to expand a few hundred bytes into billions of values).
    """

    text_chars: int = 65_536
    string_chars: int = 1_024
    items: int = 1_000
    labels: int = 10_000
    depth: int = 32
    nodes: int = 20_000
    file_bytes: int = 8 * 2**20
    metadata_chars: int = 2**20
    yaml_nodes: int = 100_000


LIMITS = HubLimits()


def escape_unsafe(text: str, *, multiline: bool = False) -> tuple[str, int]:
    """``text`` with every unsafe character written as ``\\uXXXX``, and how many there were.

    Unsafe: control characters (tab and line breaks are kept when ``multiline``), bidi embeddings, overrides and
    isolates, line / paragraph separators and lone surrogates. Printable text, emoji and right-to-left scripts pass.
    """
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE_SINGLE_LINE
    if pattern.search(text) is None:  # the common case: one scan, no copy
        return text, 0
    return pattern.subn(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_for_display(text: object) -> str:
    """``str(text)`` safe for one line of a terminal, a table cell or a collection note (see :func:`escape_unsafe`)."""
    return escape_unsafe(str(text))[0]


def some_of(items: Sequence[Any], limit: int = 3, *, show: Callable[[Any], str] | None = None) -> str:
    """``'a', 'b', 'c' and 4 more``: enough of a list to find it, short enough for one line of a note or an error.
    Each item is quoted and escaped for display (a name read from a user's file cannot break the line or the
    terminal), or written by ``show``, which then escapes what it writes; only the items shown are written."""
    shown = ", ".join((show or _quoted)(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _quoted(item: object) -> str:
    return f"'{escape_for_display(item)}'"


@dataclass
class _Walk:
    """State of one :func:`sanitize_value` call: the limits, the nodes left, and what was changed."""

    limits: HubLimits
    nodes_left: int
    escaped: int = 0  # strings that held unsafe characters
    non_finite: int = 0  # infinite or NaN numbers, dropped
    cut: Counter[str] = field(default_factory=Counter)  # what was cut -> how often


def sanitize_value(
    value: Any,
    *,
    limits: HubLimits = LIMITS,
    multiline: bool = False,
    max_chars: int | None = None,
    max_items: int | None = None,
) -> tuple[Any, list[str]]:
    """One value from the Hub made safe: escaped, capped, JSON-typed; and what was changed, as short phrases.

    Strings are escaped (:func:`escape_unsafe`) and cut at ``max_chars`` (default ``limits.string_chars``). Lists,
    tuples and mappings keep their type and their first ``max_items`` items (default ``limits.items``; applies to the
    outer level, inner levels use ``limits.items``); mapping keys become strings. Nesting past ``limits.depth`` and
    values past ``limits.nodes`` are dropped, which also bounds a structure that shares sub-structures (YAML aliases).
    Integers outside int64 and infinite or NaN numbers (JSON has neither; the index rule refuses them) become
    ``None``; other non-JSON scalars (dates, ...) become their ``str``; frozen dataclasses (``EvalResult``) are
    sanitised field by field. Safe to apply twice: a sanitised value is unchanged.

    Returns:
        ``(clean, changes)``: ``changes`` is empty when nothing was changed, else short phrases, each starting with
        its error kind (:data:`UNSAFE_TEXT`, :data:`OVERSIZED`, :data:`BAD_VALUE`).

    Example:
        >>> clean, changes = sanitize_value(["cat", "dog\\u202e", "\\ud83d"])
        >>> print(clean)
        ['cat', 'dog\\\\u202e', '\\\\ud83d']
        >>> changes
        ['unsafe_text: held control, bidi-override or unencodable characters (2 strings), stored escaped as \\\\uXXXX']
    """
    walk = _Walk(limits=limits, nodes_left=limits.nodes)
    clean = _clean(value, walk, depth=0, multiline=multiline, max_chars=max_chars, max_items=max_items)
    changes = []
    if walk.escaped:
        noun = "string" if walk.escaped == 1 else "strings"
        changes.append(
            f"{UNSAFE_TEXT}: held control, bidi-override or unencodable characters ({walk.escaped} {noun}), "
            "stored escaped as \\uXXXX"
        )
    if walk.non_finite:
        noun = "number" if walk.non_finite == 1 else "numbers"
        changes.append(f"{BAD_VALUE}: held {walk.non_finite} infinite or NaN {noun}, dropped")
    changes += [f"{OVERSIZED}: {what}" for what in sorted(walk.cut)]
    return clean, changes


def _clean(
    value: Any,
    walk: _Walk,
    *,
    depth: int,
    multiline: bool = False,
    max_chars: int | None = None,
    max_items: int | None = None,
) -> Any:
    walk.nodes_left -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        limit = max_chars or walk.limits.string_chars
        text, escaped = escape_unsafe(value, multiline=multiline)
        walk.escaped += escaped > 0
        if len(text) > limit:
            walk.cut[f"kept the first {limit} of {len(text)} characters"] += 1
            text = text[:limit]
        return text
    if isinstance(value, int):
        if -_INT64 <= value < _INT64:
            return value
        walk.cut["an integer beyond 64 bits was dropped"] += 1
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        walk.non_finite += 1
        return None
    if depth >= walk.limits.depth and isinstance(value, (Mapping, list, tuple)):
        walk.cut[f"nesting deeper than {walk.limits.depth} levels was dropped"] += 1
        return None
    limit = max_items or walk.limits.items
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for n, (key, item) in enumerate(value.items()):
            if n >= limit or walk.nodes_left <= 0:
                walk.cut[_items_phrase(limit, len(value), walk)] += 1
                break
            out[_clean(str(key), walk, depth=depth + 1)] = _clean(item, walk, depth=depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        kept = []
        for n, item in enumerate(value):
            if n >= limit or walk.nodes_left <= 0:
                walk.cut[_items_phrase(limit, len(value), walk)] += 1
                break
            kept.append(_clean(item, walk, depth=depth + 1))
        return tuple(kept) if isinstance(value, tuple) else kept
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _clean(getattr(value, f.name), walk, depth=depth + 1) for f in fields(value)})
    return _clean(str(value), walk, depth=depth, max_chars=max_chars)


def _items_phrase(limit: int, total: int, walk: _Walk) -> str:
    if walk.nodes_left <= 0:
        return f"more than {walk.limits.nodes} nested values; the rest was dropped"
    return f"kept the first {limit} of {total} items"


def sanitize_record(record: ModelRecord, *, limits: HubLimits = LIMITS) -> ModelRecord:
    """``record`` with every field passed through :func:`sanitize_value` and the index rule
    (:func:`~hf_spider.hub.records.field_value`; a value it refuses is dropped), and what changed recorded.

    Each change becomes one line ``"<kind>: <field> <what>"`` in ``extra["sanitised"]`` and one part of ``error``
    (kinds :data:`UNSAFE_TEXT`, :data:`OVERSIZED` and :data:`BAD_VALUE`). Lines from an earlier pass are kept and not
    repeated, so sanitising a record again (a re-crawl, a record completed with its files) changes nothing more.
    ``error`` itself is escaped and capped but not reported on: it quotes the Hub, and the part that quoted it
    already says so.
    """
    old_notes = [str(n) for n in record.extra.get(SANITISED_KEY, ())] if isinstance(record.extra, dict) else []
    notes = list(old_notes)
    changed: dict[str, Any] = {}
    for f in fields(record):
        if f.name in ("error", "extra"):
            continue
        value = getattr(record, f.name)
        clean, changes = sanitize_value(value, limits=limits, **_field_options(f.name, limits))
        if f.name != "repo_id":
            clean, refused = _usable(f.name, clean)
            changes += refused
        if changes or clean != value:  # a change of type only (a date made a string) is not worth a note
            changed[f.name] = clean
            notes += [_note(f.name, change) for change in changes]
    extra = {k: v for k, v in (record.extra or {}).items() if k != SANITISED_KEY}
    clean_extra, changes = sanitize_value(extra, limits=limits)
    notes += [_note("extra", change) for change in changes]
    notes = list(dict.fromkeys(notes))
    if notes:
        clean_extra[SANITISED_KEY] = notes
    kept_error = [p for p in (record.error or "").split(ERROR_SEPARATOR) if p and p not in old_notes]
    error_text = sanitize_value(ERROR_SEPARATOR.join(kept_error), max_chars=4 * limits.string_chars)[0]
    error = join_errors([error_text, *notes])
    if not changed and notes == old_notes and clean_extra == record.extra and error == record.error:
        return record
    return replace(record, **changed, extra=clean_extra, error=error)


def _usable(name: str, value: Any) -> tuple[Any, list[str]]:
    """``value`` as the record field ``name`` holds it, by the rule every index row is read with
    (:func:`~hf_spider.hub.records.field_value`); ``None`` and a :data:`BAD_VALUE` phrase when the rule refuses it,
    so that one hostile value costs its field, not the index (a row the rule refuses makes the whole file
    unreadable)."""
    try:
        return field_value(name, value), []
    except ValueError as exc:
        return None, [f"{BAD_VALUE}: was dropped ({exc})"]


def _field_options(name: str, limits: HubLimits) -> dict[str, Any]:
    """Prose keeps its line breaks and gets the larger cap; label names have their own count."""
    if name == "card_text":
        return {"multiline": True, "max_chars": limits.text_chars}
    if name == "label_names":
        return {"max_items": limits.labels}
    return {}


def _note(name: str, change: str) -> str:
    kind, _, what = change.partition(": ")
    return f"{kind}: {name} {what}"
