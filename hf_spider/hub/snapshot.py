"""The crawl journal and index statistics: what makes a crawl resumable and its index inspectable.

A crawl writes every record it finishes to an append-only journal next to the index (one JSON line each, flushed at
once, so ``kill -9`` loses at most the line being written). The next crawl replays the journal over the last index
snapshot, skips what it already has, and at the end writes the merged index atomically and drops the journal. A torn
last line is the only damage a kill can do; it is cut off before appending again.

The journal never holds a poison record: a record is encoded to UTF-8 before anything is written, and one that cannot
be (a value no sanitiser caught) is replaced by a failed record of the same repo and sha, so every resume makes
progress instead of failing on the same repo again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidIndexError
from .cards import error_kinds
from .index import index_format, read_index
from .output_paths import check_append_file, check_output_file
from .records import ModelRecord
from .sanitize import UNSAFE_TEXT, escape_for_display

logger = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".journal.jsonl"


class CrawlJournal:
    """Append-only JSON Lines of the records a crawl has finished since the last index snapshot; thread-safe."""

    def __init__(self, index_path: str | Path) -> None:
        index_path = Path(index_path)
        self.path = index_path.with_name(index_path.name + JOURNAL_SUFFIX)
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None

    def check(self, *, what: str = "index") -> None:
        """Refuse a journal path that cannot be appended to in place (see
        :func:`~hf_spider.hub.output_paths.check_append_file`); ``what`` names the index in the message.

        Raises:
            InvalidOutputError: the journal is a symbolic link, folder, device, FIFO or socket, or read-only.
        """
        fix = f"remove it (the next crawl then fetches its models again) or pass another {what}"
        check_append_file(self.path, what="crawl journal", fix=fix)

    def replay(self) -> dict[str, ModelRecord]:
        """The records of the journal by repo id (a later line wins); a torn or unreadable line is skipped.

        Raises:
            InvalidIndexError: the journal is not UTF-8 text, so not one a crawl wrote (each line is encoded before
                it is written, and a torn last line is left out): it would be crawled over, then deleted.
        """
        records: dict[str, ModelRecord] = {}
        if not self.path.is_file():
            return records
        data = self.path.read_bytes()
        try:
            text = data[: data.rfind(b"\n") + 1].decode("utf-8")  # a torn last line may end inside a character
        except UnicodeDecodeError as exc:
            raise InvalidIndexError(
                f"crawl journal '{self.path}' is not UTF-8 text (byte {exc.start}), so no crawl wrote it; move it "
                "away or delete it (the next crawl then fetches its models again)"
            ) from exc
        for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines(), as read_index
            if not line.strip():
                continue
            try:
                record = ModelRecord.from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError, RecursionError):
                logger.info(
                    "skipping unreadable line %d of %s (a crawl was cut off while writing it)", lineno, self.path
                )
                continue
            records[record.repo_id] = record
        if records:
            logger.info("resuming: %d records from the journal %s", len(records), self.path)
        return records

    def __enter__(self) -> CrawlJournal:
        self.check()  # again, right before opening: the crawl checked it before its first request
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cut_torn_tail()
        self._file = self.path.open("ab")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            if self.path.is_file() and self.path.stat().st_size == 0:  # nothing finished (the listing failed)
                self.discard()  # leave no empty journal behind

    def append(self, record: ModelRecord) -> ModelRecord:
        """Write one record as one line and flush it to the OS, so a killed process keeps it; returns what was written.

        A record that cannot be encoded is written as a failed record of the same repo and sha (``unsafe_text``),
        and that is what is returned: keep it rather than the original, so the index written later holds it too.
        """
        try:
            line = _encode(record)
        except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            logger.warning("record of %s cannot be written (%s); keeping it as failed", _shown(record), exc)
            record = ModelRecord(
                repo_id=_shown(record),
                sha=record.sha,
                error=f"{UNSAFE_TEXT}: the record could not be encoded ({type(exc).__name__}); report this repo",
            )
            line = _encode(record)
        with self._lock:
            if self._file is None:
                raise RuntimeError("the journal is not open; use it as a context manager")
            self._file.write(line)
            self._file.flush()
        return record

    def discard(self) -> None:
        """Remove the journal once its records are in an index snapshot."""
        self.path.unlink(missing_ok=True)

    def _cut_torn_tail(self) -> None:
        """Drop a last line without its newline, so the next append starts a fresh line."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)


def _encode(record: ModelRecord) -> bytes:
    return (json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _shown(record: ModelRecord) -> str:
    return escape_for_display(record.repo_id)


@dataclass(frozen=True)
class IndexStats:
    """Counts over an index: models per pipeline tag and library, fields left empty, models per error kind."""

    total: int
    pipeline_tags: dict[str, int]
    libraries: dict[str, int]
    missing_fields: dict[str, int]
    errors: dict[str, int]
    with_error: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Fields that ``missing_fields`` does not count (always set, or bookkeeping).
_NOT_COUNTED = frozenset({"repo_id", "error", "extra"})


def index_stats(records: Iterable[ModelRecord]) -> IndexStats:
    """Statistics of ``records``; a missing tag or library is counted under ``"(none)"``."""
    records = list(records)
    names = [f.name for f in fields(ModelRecord) if f.name not in _NOT_COUNTED]
    missing = {name: sum(1 for r in records if getattr(r, name) is None) for name in names}
    return IndexStats(
        total=len(records),
        pipeline_tags=dict(Counter(r.pipeline_tag or "(none)" for r in records).most_common()),
        libraries=dict(Counter(r.library_name or "(none)" for r in records).most_common()),
        missing_fields={k: v for k, v in missing.items() if v},
        errors=dict(Counter(kind for r in records for kind in error_kinds(r.error)).most_common()),
        with_error=sum(1 for r in records if r.error),
    )


def check_crawl_outputs(index_path: str | Path, *, what: str = "index") -> None:
    """Refuse, before any request, an index path a crawl cannot write: the index as any output
    (:func:`~hf_spider.hub.output_paths.check_output_file`), its suffix (:func:`~hf_spider.hub.index.index_format`),
    and its journal, which is appended to in place (:meth:`CrawlJournal.check`).

    Raises:
        InvalidOutputError: the index or its journal is a symbolic link, folder, device, FIFO or socket, read-only,
            or in a folder that cannot be written.
        InvalidIndexError: the index is neither ``.jsonl`` nor ``.parquet``.
    """
    check_output_file(index_path, what=what)
    index_format(index_path, what=what, writing=True)
    CrawlJournal(index_path).check(what=what)


def load_with_journal(index_path: str | Path) -> dict[str, ModelRecord]:
    """The last snapshot of an index with its journal replayed on top, by repo id (empty when neither exists)."""
    index_path = Path(index_path)
    records = {r.repo_id: r for r in read_index(index_path)} if index_path.is_file() else {}
    records.update(CrawlJournal(index_path).replay())
    return records
