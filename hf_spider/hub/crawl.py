"""Hub crawler: ``list_models`` (with ``expand``) plus optional ``config.json`` / README.md into a model index.

One listing request per page gives most of a record (sha, tags, pipeline tag, library, downloads, likes, gated,
safetensors parameter count, card metadata, architectures). ``config.json`` (label names, input size) and the README
(card prose, full ``model-index``) are fetched only when asked, by a bounded thread pool, at the listed sha, through
``hf_hub_download`` so they land in the HF cache and offline mode can use them later.

Guarantees:
    * **Incremental**: a model whose sha did not change since the last crawl is not fetched again.
    * **Resumable**: finished records go to a journal at once (:class:`~hf_spider.hub.snapshot.CrawlJournal`); a
      crawl killed at any moment and run again ends with the same index, nothing lost or duplicated.
    * **Fault-tolerant**: one bad repo never stops a crawl. Gated, deleted, malformed or timed-out repos are kept
      with what is known and a typed ``error`` (see :data:`~hf_spider.hub.cards.ERROR_KINDS`).
    * **Polite**: bounded retries with jittered exponential backoff on 429 / 5xx / timeouts, honouring
      ``Retry-After``; an optional request rate. The token comes from ``huggingface_hub`` (``HF_TOKEN``, ``hf auth
      login``) and is never logged or put in an error.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import HubCrawlError, OfflineCacheMissError
from .cards import config_fields, error_kinds, join_errors, parse_card, record_from_model_info
from .index import write_index
from .layouts import derive_fields, merge_fields, sentence_transformers_fields
from .local import SENTENCE_TRANSFORMERS_FILES, records_from_dir, snapshot_record
from .records import ModelRecord
from .snapshot import CrawlJournal, index_stats, load_with_journal

logger = logging.getLogger(__name__)

T = TypeVar("T")
SortKey = Literal["downloads", "likes", "trending", "last_modified", "created_at"]
Part = str  # "config" or "card"

_SORTS: dict[str, Any] = {
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trending_score",
    "last_modified": "last_modified",
    "created_at": "created_at",
}
#: ``expand`` fields of the listing: everything a record takes from the API, in one request per page.
LIST_EXPAND: list[Any] = [
    "sha",
    "pipeline_tag",
    "library_name",
    "tags",
    "downloads",
    "likes",
    "gated",
    "createdAt",
    "lastModified",
    "safetensors",
    "cardData",
    "config",
]
#: ``ModelRecord.extra`` key listing the parts (``"card"``, ``"config"``) a record was crawled with.
CRAWLED_KEY = "hf_spider_crawled"
#: Error kinds that make the next crawl fetch a model again even if its sha did not change.
_REFETCH_KINDS = frozenset({"transient", "not_found"})
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Selection:
    """Which models to crawl. ``models`` (explicit ids) replaces the listing filters when given.

    Args:
        pipeline_tag: e.g. ``"image-classification"``.
        library: a library tag such as ``"transformers"`` or ``"timm"``.
        search: a substring of the repo id.
        author: a user or organisation.
        models: explicit repo ids (one model-info request each).
        sort: listing order, most first.
        limit: at most this many models (the listing stops requesting pages there).
    """

    pipeline_tag: str | None = None
    library: str | None = None
    search: str | None = None
    author: str | None = None
    models: tuple[str, ...] | None = None
    sort: SortKey | None = "downloads"
    limit: int | None = None


@dataclass(frozen=True)
class CrawlReport:
    """What one crawl did. ``fetched`` counts models whose files or info were requested, ``unchanged`` those skipped."""

    index_path: Path
    listed: int = 0
    fetched: int = 0
    unchanged: int = 0
    total: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    offline: bool = False
    seconds: float = 0.0


class Crawler:
    """Crawls the Hub into an index; one instance holds the client settings.

    Args:
        endpoint: Hub URL (default: ``HF_ENDPOINT`` / huggingface.co).
        token: a token, or ``None`` for the usual places (``HF_TOKEN``, the ``huggingface_hub`` login).
        with_config: also fetch ``config.json`` (label names, input size).
        with_card: also fetch README.md (card prose, full ``model-index``).
        workers: concurrent fetches.
        requests_per_second: cap on our own calls (model info, file fetches); ``None`` for no cap.
        timeout: seconds to wait for a model-info answer or a file's metadata before retrying.
        max_retries: retries of one call on 429 / 5xx / timeouts / cut connections.
        backoff: first retry wait in seconds, doubled per retry up to ``max_backoff`` and jittered.
        cache_dir: HF cache folder for fetched files (default: the HF cache).
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        with_config: bool = False,
        with_card: bool = False,
        workers: int = 8,
        requests_per_second: float | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        cache_dir: str | Path | None = None,
    ) -> None:
        from huggingface_hub import HfApi, get_token

        if workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        self.endpoint = endpoint
        self._token = token
        self._secret = token or get_token()  # only to scrub it from messages; never logged
        self.parts: frozenset[Part] = frozenset(
            part for part, wanted in (("config", with_config), ("card", with_card)) if wanted
        )
        self.workers = workers
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.cache_dir = cache_dir
        self._limiter = _RateLimiter(requests_per_second)
        self._api = HfApi(endpoint=endpoint, token=token, library_name="hf_spider")

    # ---- public ------------------------------------------------------------------------------------------------------

    def crawl(self, index_path: str | Path, selection: Selection | None = None) -> CrawlReport:
        """Crawl ``selection`` into the index at ``index_path`` (``.parquet`` or ``.jsonl``), resuming if cut off.

        Offline (``HF_HUB_OFFLINE=1``) nothing is requested: the last snapshot is read and explicit ``models`` missing
        from it are read from the local HF cache.

        Raises:
            HubCrawlError: the listing failed for good (bad filter, no access, Hub down past all retries).
            OfflineCacheMissError: offline, and the index or an asked model is not available locally.
        """
        from huggingface_hub.constants import is_offline_mode
        from huggingface_hub.utils import tqdm

        selection = selection or Selection()
        index_path = Path(index_path)
        if is_offline_mode():
            return self._crawl_offline(index_path, selection)
        start = time.monotonic()
        known = load_with_journal(index_path)
        done: dict[str, ModelRecord] = {}
        fetched = listed = 0
        journal = CrawlJournal(index_path)
        total = len(selection.models) if selection.models is not None else selection.limit
        with (
            journal,
            ThreadPoolExecutor(self.workers, thread_name_prefix="hf_spider.crawl") as pool,
            tqdm(total=total, unit="model", desc="crawl", name="hf_spider.crawl") as bar,
        ):
            pending: set[Future[tuple[ModelRecord, bool]]] = set()

            def drain(until: int) -> None:
                nonlocal fetched, pending
                while len(pending) > until:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        record, was_fetched = future.result()
                        if was_fetched:
                            journal.append(record)
                            fetched += 1
                        done[record.repo_id] = record
                        bar.update(1)

            for item in self._items(selection):
                listed += 1
                pending.add(pool.submit(self._process, item, known))
                drain(until=4 * self.workers)  # bounded queue: the listing never runs far ahead of the fetches
            drain(until=0)
        merged = {**known, **done}
        write_index([merged[k] for k in sorted(merged)], index_path)
        journal.discard()
        report = CrawlReport(
            index_path=index_path,
            listed=listed,
            fetched=fetched,
            unchanged=listed - fetched,
            total=len(merged),
            errors=_error_counts(done.values()),
            seconds=time.monotonic() - start,
        )
        logger.info(
            "crawled %d models (%d fetched, %d unchanged) into %s in %.1fs",
            listed,
            fetched,
            report.unchanged,
            index_path,
            report.seconds,
        )
        return report

    # ---- listing -----------------------------------------------------------------------------------------------------

    def _items(self, selection: Selection) -> Iterator[ModelRecord | str]:
        """Listed records (from the API) or, for explicit ids, the ids themselves (resolved by a worker)."""
        if selection.models is not None:
            yield from dict.fromkeys(selection.models)
            return
        seen: set[str] = set()
        for attempt in range(self.max_retries + 1):
            try:
                for info in self._api.list_models(
                    pipeline_tag=selection.pipeline_tag,
                    filter=selection.library,
                    search=selection.search,
                    author=selection.author,
                    sort=_SORTS[selection.sort] if selection.sort else None,
                    limit=selection.limit,
                    expand=LIST_EXPAND,
                ):
                    if info.id not in seen:  # a listing restarted after a failure repeats its first pages
                        seen.add(info.id)
                        yield record_from_model_info(info)
                return
            except Exception as exc:
                if not _is_transient(exc) or attempt == self.max_retries:
                    raise HubCrawlError(
                        f"listing models failed ({self._describe(exc)}); check the filters, endpoint and your access"
                    ) from exc
                self._sleep_before_retry("listing", exc, attempt)

    # ---- one model ---------------------------------------------------------------------------------------------------

    def _process(self, item: ModelRecord | str, known: dict[str, ModelRecord]) -> tuple[ModelRecord, bool]:
        """The up-to-date record of one model and whether anything was requested for it."""
        if isinstance(item, str):
            repo_id = item
            try:
                info = self._call(
                    f"model info of {repo_id}",
                    lambda: self._api.model_info(repo_id, expand=LIST_EXPAND, timeout=self.timeout),
                )
            except Exception as exc:
                return ModelRecord(repo_id=repo_id, error=self._repo_error(repo_id, exc)), True
            item = record_from_model_info(info)
            was_requested = True
        else:
            was_requested = False
        previous = known.get(item.repo_id)
        if previous is not None and not self._needs_fetch(item, previous):
            return replace(previous, downloads=item.downloads, likes=item.likes), was_requested
        return self.fetch(item), True

    def fetch(self, listed: ModelRecord) -> ModelRecord:
        """``listed`` completed with the parts this crawler was asked for, at the listed sha; never raises."""
        fields: dict[str, Any] = {}
        errors = [listed.error or ""]
        try:
            if "card" in self.parts and (raw := self._download(listed, "README.md")) is not None:
                card, card_error = parse_card(raw)
                fields.update({k: v for k, v in card.items() if k not in ("pipeline_tag", "library_name")})
                errors.append(card_error or "")
            if "config" in self.parts and (raw := self._download(listed, "config.json")) is not None:
                config, config_error = config_fields(raw)
                fields = merge_fields(fields, config)
                errors.append(config_error or "")
            if "config" in self.parts and listed.library_name == "sentence-transformers":
                files = [self._download(listed, name) for name in SENTENCE_TRANSFORMERS_FILES]
                parsed = [_json_or_none(raw) for raw in files]
                fields = merge_fields(fields, sentence_transformers_fields(*parsed))
        except Exception as exc:  # one bad repo never stops the crawl: record why and go on
            errors.append(self._repo_error(listed.repo_id, exc))
        extra = {**listed.extra, **fields.pop("extra", {}), CRAWLED_KEY: sorted(self.parts)}
        return derive_fields(replace(listed, **fields, extra=extra, error=join_errors(errors)))

    def _needs_fetch(self, listed: ModelRecord, previous: ModelRecord) -> bool:
        return (
            previous.sha is None
            or previous.sha != listed.sha
            or not self.parts <= set(previous.extra.get(CRAWLED_KEY, ()))
            or bool(_REFETCH_KINDS.intersection(error_kinds(previous.error)))
        )

    def _download(self, record: ModelRecord, filename: str) -> bytes | None:
        """A file of the repo at the record's sha, from the HF cache or the Hub; ``None`` if the repo has none."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            path = self._call(
                f"{filename} of {record.repo_id}",
                lambda: hf_hub_download(
                    record.repo_id,
                    filename,
                    revision=record.sha,
                    endpoint=self.endpoint,
                    token=self._token,
                    cache_dir=self.cache_dir,
                    etag_timeout=self.timeout,
                    library_name="hf_spider",
                ),
            )
        except EntryNotFoundError:
            return None
        return Path(path).read_bytes()

    # ---- retries and errors ------------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` retried on transient failures; lasting ones (gated, not found, invalid id) are raised at once."""
        for attempt in range(self.max_retries + 1):
            self._limiter.wait()
            try:
                return fn()
            except Exception as exc:
                if not _is_transient(exc) or attempt == self.max_retries:
                    raise
                self._sleep_before_retry(what, exc, attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _sleep_before_retry(self, what: str, exc: Exception, attempt: int) -> None:
        delay = _retry_after(exc)
        if delay is None:
            delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        logger.info(
            "%s failed (%s); retry %d/%d in %.2fs", what, self._describe(exc), attempt + 1, self.max_retries, delay
        )
        time.sleep(delay)

    def _repo_error(self, repo_id: str, exc: Exception) -> str:
        """The ``error`` text of a record whose repo could not be read (kind first, see ``ERROR_KINDS``)."""
        from huggingface_hub.errors import (
            GatedRepoError,
            HFValidationError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(exc, GatedRepoError):
            return f"gated: {repo_id} needs accepted terms; accept them on the Hub and pass a token with access"
        if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)):
            return f"not_found: {repo_id} is gone or private ({self._describe(exc)}); check the id or your access"
        if isinstance(exc, HFValidationError):
            return f"invalid_id: '{repo_id}' is not a valid repo id; fix the id"
        if _is_transient(exc):
            return f"transient: {self._describe(exc)} after {self.max_retries} retries; crawl again later"
        logger.warning("unexpected failure on %s: %s", repo_id, self._describe(exc))
        return f"transient: unexpected {self._describe(exc)}; crawl again, and report it if it persists"

    def _describe(self, exc: BaseException) -> str:
        """``Type: first line`` of an exception, with the token scrubbed out."""
        lines = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")
        return text.replace(self._secret, "***") if self._secret else text

    # ---- offline -----------------------------------------------------------------------------------------------------

    def _crawl_offline(self, index_path: Path, selection: Selection) -> CrawlReport:
        from huggingface_hub import snapshot_download

        records = load_with_journal(index_path)
        added = []
        for repo_id in selection.models or ():
            if repo_id in records:
                continue
            try:
                folder = snapshot_download(repo_id, cache_dir=self.cache_dir, local_files_only=True)
            except Exception as exc:
                raise OfflineCacheMissError(
                    f"HF_HUB_OFFLINE=1 and '{repo_id}' is neither in the index '{index_path}' nor in the local HF "
                    f"cache ({type(exc).__name__}); crawl it once online or unset HF_HUB_OFFLINE"
                ) from exc
            added.append(snapshot_record(repo_id, folder))
        if not records and not added:
            raise OfflineCacheMissError(
                f"HF_HUB_OFFLINE=1 and there is no index at '{index_path}'; crawl once online or unset HF_HUB_OFFLINE"
            )
        records.update((r.repo_id, r) for r in added)
        if added:
            write_index([records[k] for k in sorted(records)], index_path)
        logger.warning(
            "offline (HF_HUB_OFFLINE=1): using the last snapshot %s with %d models; nothing was requested",
            index_path,
            len(records),
        )
        return CrawlReport(index_path=index_path, fetched=0, total=len(records), offline=True)


def crawl(index_path: str | Path, selection: Selection | None = None, **settings: Any) -> CrawlReport:
    """Crawl the Hub into ``index_path``; ``settings`` are :class:`Crawler`'s arguments.

    Example:
        >>> selection = Selection(pipeline_tag="image-classification", limit=100)
        >>> crawl("models.parquet", selection, with_config=True)  # doctest: +SKIP
        CrawlReport(index_path=PosixPath('models.parquet'), listed=100, fetched=100, ...)
    """
    return Crawler(**settings).crawl(index_path, selection)


def crawl_dir(root: str | Path, index_path: str | Path) -> CrawlReport:
    """Index a folder of model repos laid out as on the Hub (``crawl --from-dir``), merged into ``index_path``."""
    start = time.monotonic()
    found = records_from_dir(Path(root))
    records = load_with_journal(index_path)
    records.update((r.repo_id, r) for r in found)
    write_index([records[k] for k in sorted(records)], index_path)
    return CrawlReport(
        index_path=Path(index_path),
        listed=len(found),
        fetched=len(found),
        total=len(records),
        errors=_error_counts(found),
        seconds=time.monotonic() - start,
    )


def _json_or_none(raw: bytes | None) -> Any:
    """Parsed JSON of a downloaded file, ``None`` when absent or not JSON (the layout is then simply not read)."""
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


def _is_transient(exc: BaseException) -> bool:
    """Failures that may pass if tried again: 408/429/5xx, timeouts, cut connections, a HEAD that never answered."""
    import httpx2
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code in _RETRY_STATUS
    if isinstance(exc, LocalEntryNotFoundError):  # hf_hub_download's answer to a failed HEAD with nothing cached
        return not is_offline_mode()
    return isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError))


def _retry_after(exc: BaseException) -> float | None:
    """The ``Retry-After`` seconds a 429/503 answer asked for, if any."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        value = exc.response.headers.get("Retry-After")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None
    return None


def _error_counts(records: Iterable[ModelRecord]) -> dict[str, int]:
    return index_stats(records).errors


class _RateLimiter:
    """Spaces calls at least ``1 / per_second`` apart across threads (``None``: no limit)."""

    def __init__(self, per_second: float | None) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError(f"requests_per_second={per_second} must be positive; pass None for no limit")
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        time.sleep(max(0.0, slot - now))
