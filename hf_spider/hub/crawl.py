"""Hub crawler: ``list_models`` (with ``expand``) plus optional ``config.json`` / README.md into a model index.

One listing request per page gives most of a record (sha, tags, pipeline tag, library, downloads, likes, gated,
safetensors parameter count, card metadata, architectures). ``config.json`` (label names, input size) and the README
(card prose, full ``model-index``) are fetched only when asked, by a bounded thread pool, at the listed sha: one
streamed ``GET`` of the client's ``resolve`` URL each, read up to :attr:`HubLimits.file_bytes`. Not
``hf_hub_download``: it sends a HEAD first, retries a failed HEAD with a fixed 60 s timeout and up to 23 s of waits of
its own, and reads a file of any size, so neither the time nor the memory one repo costs could be bounded.

Guarantees:
    * **Incremental**: a model whose sha did not change since the last crawl is not fetched again.
    * **Resumable**: finished records go to a journal at once (:class:`~hf_spider.hub.snapshot.CrawlJournal`); a
      crawl killed at any moment and run again ends with the same index, nothing lost or duplicated.
    * **Fault-tolerant**: one bad repo never stops a crawl. Gated, deleted, malformed, hostile or timed-out repos
      are kept with what is known and a typed ``error`` (see :data:`~hf_spider.hub.cards.ERROR_KINDS`); every record
      passes :func:`~hf_spider.hub.sanitize.sanitize_record`, so what reaches the journal can always be written.
    * **Bounded**: every request has a timeout, every repo a time budget (``repo_budget``), every file a size cap;
      memory does not depend on what a card or a config holds.
    * **Polite**: bounded retries with jittered exponential backoff on 429 / 5xx / timeouts / cut connections,
      honouring ``Retry-After`` (:mod:`hf_spider.hub.retry`); an optional request rate. The token comes from
      ``huggingface_hub`` (``HF_TOKEN``, ``hf auth login``) and is never logged or put in an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import HubCrawlError, OfflineCacheMissError
from .cards import SENTENCE_TRANSFORMERS_FILES, error_kinds, record_from_model_info, repo_file_fields
from .dedup import WEIGHTS_KEY, weights_sha256
from .index import write_index
from .layouts import derive_fields
from .local import records_from_dir, snapshot_record
from .records import ModelRecord, join_errors
from .retry import (
    RateLimiter,
    RetriesStoppedError,
    RetryPolicy,
    call_with_retries,
    describe,
    is_transient,
    read_capped,
    session_timeout,
    wait_before_retry,
)
from .sanitize import LIMITS, HubLimits, escape_for_display, sanitize_record
from .snapshot import CrawlJournal, check_crawl_outputs, index_stats, load_with_journal

logger = logging.getLogger(__name__)

T = TypeVar("T")
SortKey = Literal["downloads", "likes", "trending", "last_modified", "created_at"]
Part = str  # "config", "card" or "weights"

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
#: Seconds one model may take in all, tries and waits (:class:`Crawler`'s ``repo_budget``).
DEFAULT_REPO_BUDGET = 120.0
#: Error kinds that make the next crawl fetch a model again even if its sha did not change.
_REFETCH_KINDS = frozenset({"transient", "not_found"})


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
        with_weights_digest: also list the repo's top-level files (one request) for the LFS sha256 of its weight
            files, so that copies of one checkpoint under unrelated names collapse into one
            (:func:`~hf_spider.hub.dedup.collapse_copies`, rule 1).
        workers: concurrent fetches.
        requests_per_second: cap on our own calls (model info, file fetches); ``None`` for no cap. At least one call
            per ``repo_budget``: a model waiting longer for its next call would run out of time before it.
        timeout: seconds any request may stay silent (listing pages included) before it is retried.
        max_retries: retries of one call on 429 / 5xx / timeouts / cut connections.
        backoff: first retry wait in seconds, doubled per retry up to ``max_backoff`` and jittered.
        repo_budget: seconds one model may take in all (tries and waits); past it the model is recorded as
            ``transient`` and the next crawl tries it again.
        cache_dir: HF cache folder offline mode reads models from (default: the HF cache).
        limits: caps on what is read and kept of each model (:class:`~hf_spider.hub.sanitize.HubLimits`).
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        with_config: bool = False,
        with_card: bool = False,
        with_weights_digest: bool = False,
        workers: int = 8,
        requests_per_second: float | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        repo_budget: float = DEFAULT_REPO_BUDGET,
        cache_dir: str | Path | None = None,
        limits: HubLimits = LIMITS,
    ) -> None:
        from huggingface_hub import HfApi, get_token

        if workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        if timeout <= 0 or repo_budget <= 0:
            raise ValueError(f"timeout={timeout} and repo_budget={repo_budget} must be positive")
        if requests_per_second is not None and not requests_per_second >= 1 / repo_budget:
            raise ValueError(
                f"requests_per_second={requests_per_second} spaces requests more than repo_budget={repo_budget:g}s "
                "apart, so every model would run out of time waiting; pass a higher rate or None for no cap"
            )
        self.endpoint = endpoint
        self._token = token
        self._secret = token or get_token()  # only to scrub it from messages; never logged
        self.parts: frozenset[Part] = frozenset(
            part
            for part, wanted in (("config", with_config), ("card", with_card), ("weights", with_weights_digest))
            if wanted
        )
        self.workers = workers
        self.timeout = timeout
        self.max_retries = max_retries
        self.policy = RetryPolicy(
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            timeout=timeout,
            max_retry_after=repo_budget,
        )
        self.repo_budget = repo_budget
        self.cache_dir = cache_dir
        self.limits = limits
        self._limiter = RateLimiter(requests_per_second)
        self._api = HfApi(endpoint=endpoint, token=token, library_name="hf_spider")

    # ---- public ------------------------------------------------------------------------------------------------------

    def crawl(self, index_path: str | Path, selection: Selection | None = None) -> CrawlReport:
        """Crawl ``selection`` into the index at ``index_path`` (``.parquet`` or ``.jsonl``), resuming if cut off.

        Offline (``HF_HUB_OFFLINE=1``) nothing is requested: the last snapshot is read and explicit ``models`` missing
        from it are read from the local HF cache.

        Raises:
            HubCrawlError: the listing failed for good (bad filter, no access, Hub down past all retries).
            OfflineCacheMissError: offline, and the index or an asked model is not available locally.
            InvalidOutputError, InvalidIndexError: the index or its journal cannot be written
                (:func:`~hf_spider.hub.snapshot.check_crawl_outputs`); nothing was requested.
        """
        from huggingface_hub.constants import is_offline_mode
        from huggingface_hub.utils import tqdm

        selection = selection or Selection()
        index_path = Path(index_path)
        check_crawl_outputs(index_path)
        if is_offline_mode():
            return self._crawl_offline(index_path, selection)
        start = time.monotonic()
        known = load_with_journal(index_path)
        done: dict[str, ModelRecord] = {}
        fetched = listed = 0
        journal = CrawlJournal(index_path)
        total = len(selection.models) if selection.models is not None else selection.limit
        with (
            session_timeout(self.timeout),  # listing pages and model info: the shared session has no timeout
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
                            record = journal.append(record)  # what was written, should it differ
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
        expand = list(LIST_EXPAND)
        attempt = 0
        while True:
            try:
                for info in self._api.list_models(
                    pipeline_tag=selection.pipeline_tag,
                    filter=selection.library,
                    search=selection.search,
                    author=selection.author,
                    sort=_SORTS[selection.sort] if selection.sort else None,
                    limit=selection.limit,
                    expand=expand,
                ):
                    if info.id not in seen:  # a listing restarted after a failure repeats its first pages
                        seen.add(info.id)
                        yield self._listed_record(info)
                return
            except Exception as exc:
                if isinstance(exc, TypeError) and "cardData" in expand:
                    # The client's ModelInfo raises TypeError on card metadata holding a key named like one of its
                    # own arguments (ignore_metadata_errors), failing the whole listing. Page on without card
                    # metadata: README.md (--with-card) still gives it, and every other field is still listed.
                    logger.warning(
                        "the client could not read a card's metadata in the listing (%s); listing the rest "
                        "without card metadata (--with-card reads it from README.md)",
                        self._describe(exc),
                    )
                    expand.remove("cardData")
                    continue
                if not is_transient(exc) or attempt == self.max_retries:
                    raise self._listing_failed(exc) from exc
                try:
                    wait_before_retry(exc, attempt, what="listing", policy=self.policy, secret=self._secret)
                except RetriesStoppedError as gave_up:
                    raise self._listing_failed(gave_up) from exc
                attempt += 1

    def _listed_record(self, info: Any) -> ModelRecord:
        """The record of one listed model; a value nothing foresaw costs that model (one failed record, fetched
        again by the next crawl), never the listing of all the others."""
        try:
            return record_from_model_info(info, limits=self.limits)
        except Exception as exc:
            return self._unexpected_failure(str(info.id), exc)

    def _listing_failed(self, exc: BaseException) -> HubCrawlError:
        return HubCrawlError(
            f"listing models failed ({self._describe(exc)}); check the filters, endpoint and your access"
        )

    # ---- one model ---------------------------------------------------------------------------------------------------

    def _process(self, item: ModelRecord | str, known: dict[str, ModelRecord]) -> tuple[ModelRecord, bool]:
        """The up-to-date record of one model and whether anything was requested for it; never raises."""
        deadline = time.monotonic() + self.repo_budget
        repo_id = item if isinstance(item, str) else item.repo_id
        try:
            if isinstance(item, str):
                try:
                    info = self._call(
                        f"model info of {repo_id}",
                        lambda: self._api.model_info(
                            repo_id, expand=LIST_EXPAND, timeout=self._request_timeout(deadline)
                        ),
                        deadline,
                    )
                except Exception as exc:
                    return sanitize_record(ModelRecord(repo_id=repo_id, error=self._repo_error(repo_id, exc))), True
                item = record_from_model_info(info, limits=self.limits)
                was_requested = True
            else:
                was_requested = False
            previous = known.get(item.repo_id)
            if previous is not None and not self.needs_fetch(item, previous):
                return replace(previous, downloads=item.downloads, likes=item.likes), was_requested
            return self.fetch(item, deadline=deadline), True
        except Exception as exc:  # a bug or a value nothing foresaw: one failed record, never a failed crawl
            return self._unexpected_failure(repo_id, exc), True

    def fetch(self, listed: ModelRecord, *, deadline: float | None = None) -> ModelRecord:
        """``listed`` completed with the parts this crawler was asked for, at the listed sha; never raises.

        Args:
            listed: the record the listing gave.
            deadline: a ``time.monotonic()`` instant past which no request starts (default: ``repo_budget`` from now).
        """
        from huggingface_hub.utils import validate_repo_id

        deadline = time.monotonic() + self.repo_budget if deadline is None else deadline
        files: dict[str, tuple[bytes, bool]] = {}
        weights: dict[str, list[str]] = {}
        errors = [listed.error or ""]
        try:
            if self.parts:
                validate_repo_id(listed.repo_id)  # an id the client would refuse is never sent
            wanted = [("card", "README.md"), ("config", "config.json")]
            if listed.library_name == "sentence-transformers":  # its modules and sequence length, with the config
                wanted += [("config", name) for name in SENTENCE_TRANSFORMERS_FILES]
            for part, filename in wanted:
                if part in self.parts and (got := self._download(listed, filename, deadline)) is not None:
                    files[filename] = got
            if "weights" in self.parts and (digests := self._weights_digest(listed, deadline)):
                weights = {WEIGHTS_KEY: list(digests)}
        except Exception as exc:  # one bad repo never stops the crawl: record why, keep what was read, go on
            errors.append(self._repo_error(listed.repo_id, exc))
        fields, file_errors = repo_file_fields(files, limits=self.limits)
        for key in ("pipeline_tag", "library_name"):  # the API's values win over the card's
            fields.pop(key, None)
        extra = {**listed.extra, **fields.pop("extra", {}), **weights, CRAWLED_KEY: sorted(self.parts)}
        error = join_errors(errors + file_errors)
        record = derive_fields(replace(listed, **fields, extra=extra, error=error))
        return sanitize_record(record, limits=self.limits)

    def needs_fetch(self, listed: ModelRecord, previous: ModelRecord) -> bool:
        """Whether ``previous`` (the last crawl's record) is out of date for ``listed``: another sha, parts this
        crawler fetches that it lacks, or an error worth trying again."""
        return (
            previous.sha is None
            or previous.sha != listed.sha
            or not self.parts <= set(previous.extra.get(CRAWLED_KEY, ()))
            or bool(_REFETCH_KINDS.intersection(error_kinds(previous.error)))
        )

    def _download(self, record: ModelRecord, filename: str, deadline: float) -> tuple[bytes, bool] | None:
        """A file of the repo at the record's sha and whether it was cut at the size cap; ``None`` if there is none.

        One streamed GET of the ``resolve`` URL per try, with the client's headers and error types; the body is read
        up to ``limits.file_bytes`` and the rest never downloaded.
        """
        from huggingface_hub import hf_hub_url
        from huggingface_hub.errors import EntryNotFoundError
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(record.repo_id, filename, revision=record.sha, endpoint=self.endpoint)
        headers = build_hf_headers(token=self._token, library_name="hf_spider")

        def get() -> tuple[bytes, bool]:
            with get_session().stream("GET", url, headers=headers, timeout=self._request_timeout(deadline)) as response:
                hf_raise_for_status(response)
                return read_capped(response, self.limits.file_bytes, deadline)

        try:
            return self._call(f"{filename} of {record.repo_id}", get, deadline)
        except EntryNotFoundError:
            return None

    def _weights_digest(self, record: ModelRecord, deadline: float) -> tuple[str, ...] | None:
        """The sorted LFS sha256 digests of the weight files at the top of the repo, at the record's sha (one
        ``list_repo_tree`` request: the tree listing sends each LFS file's digest); ``None`` when it has none."""

        def listing() -> list[Any]:  # the crawl's session timeout bounds the request (this call takes none)
            self._request_timeout(deadline)  # raises once the model's budget is spent
            return list(self._api.list_repo_tree(record.repo_id, revision=record.sha))

        return weights_sha256(self._call(f"file list of {record.repo_id}", listing, deadline))

    # ---- retries and errors ------------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], deadline: float) -> T:
        """``fn()`` retried on transient failures until ``deadline``; lasting ones (gated, not found) raise at once."""
        return call_with_retries(
            fn, what=what, policy=self.policy, deadline=deadline, before_try=self._limiter.wait, secret=self._secret
        )

    def _request_timeout(self, deadline: float) -> float:
        """The timeout of the next request: ``timeout``, or less when the model's budget is nearly spent."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise RetriesStoppedError(f"the per-model time budget of {self.repo_budget:g}s is spent")
        return min(self.timeout, left)

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
        if isinstance(exc, RetriesStoppedError):
            return f"transient: {self._describe(exc)}; crawl again later"
        if is_transient(exc):
            return f"transient: {self._describe(exc)} after {self.max_retries} retries; crawl again later"
        logger.warning("unexpected failure on %s: %s", escape_for_display(repo_id), self._describe(exc))
        return f"transient: unexpected {self._describe(exc)}; crawl again, and report it if it persists"

    def _unexpected_failure(self, repo_id: str, exc: Exception) -> ModelRecord:
        """The record of a model that failed in a way nothing foresaw (a bug, a value no parser expected): kept as
        ``transient``, so the next crawl tries it again."""
        logger.warning("unexpected failure on %s: %s", escape_for_display(repo_id), self._describe(exc))
        error = f"transient: unexpected {self._describe(exc)}; crawl again, and report it if it persists"
        return sanitize_record(ModelRecord(repo_id=repo_id, error=error), limits=self.limits)

    def _describe(self, exc: BaseException) -> str:
        """One line naming a failure and the server's reason, with the token masked."""
        return describe(exc, secret=self._secret)

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
    check_crawl_outputs(index_path)
    found = records_from_dir(Path(root))
    records = load_with_journal(index_path)
    records.update((r.repo_id, r) for r in found)
    write_index([records[k] for k in sorted(records)], index_path)
    CrawlJournal(index_path).discard()  # its records are in the index now, as after a Hub crawl
    return CrawlReport(
        index_path=Path(index_path),
        listed=len(found),
        fetched=len(found),
        total=len(records),
        errors=_error_counts(found),
        seconds=time.monotonic() - start,
    )


def _error_counts(records: Iterable[ModelRecord]) -> dict[str, int]:
    return index_stats(records).errors
