"""Retries and time bounds for the Hub calls that ``huggingface_hub`` leaves unretried: the one place for them.

What the client (2.4) already does and we keep: paginated listings (``list_models``, ``list_collections``) and
preupload go through its ``http_backoff`` (5 retries, ``Retry-After``). What it does not, and this module adds:
``model_info``, ``whoami``, every collection write, ``create_repo`` and the commit POST raise on the first 429, 5xx,
timeout or cut connection (a truncated body comes out as a raw ``httpx2`` error), and its shared session has no
timeout, so a stalled answer is waited for forever. :func:`call_with_retries` retries one call on the failures that
may pass (:func:`is_transient`) with jittered exponential backoff, follows ``Retry-After``, and stops at a deadline;
:func:`session_timeout` bounds every request of the shared session while a crawl or a push runs; :func:`read_capped`
bounds a streamed body by size and deadline; :class:`RateLimiter` spaces our own calls; :func:`describe` turns any
failure into one line that keeps the server's reason.

Retrying a write is only safe when replaying it converges: callers make their writes idempotent (``exists_ok``,
``missing_ok``, a remote-head check before a commit), this module only decides when to try again.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from .sanitize import escape_for_display

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses that may pass on a second try (the client's own ``http_backoff`` retries the same set).
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How one Hub call is retried.

    Args:
        max_retries: tries after the first one.
        backoff: first wait in seconds, doubled per retry up to ``max_backoff`` and jittered (x 0.5-1).
        max_backoff: longest wait between two tries.
        timeout: seconds a request may stay silent (connect, read, write) before it counts as failed.
        max_retry_after: longest ``Retry-After`` honoured; a server asking for more ends the call with its reason.
    """

    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 10.0
    max_retry_after: float = 120.0


#: The policy of writes (collections, scorer pushes): a commit may take a while to be answered.
WRITE_POLICY = RetryPolicy(max_retries=6, backoff=1.0, max_backoff=16.0, timeout=60.0)


class RetriesStoppedError(Exception):
    """A call was not tried again: the deadline or the server's ``Retry-After`` was past what the policy allows.

    ``__cause__`` is the last failure; :func:`describe` reads through it.
    """


def is_transient(exc: BaseException) -> bool:
    """Failures that may pass on a second try: 408 / 429 / 5xx, timeouts, cut or reset connections, a body cut short.

    A body cut short before the headers said it ended is an ``httpx2.RemoteProtocolError``; one cut inside a JSON
    answer whose length the server did not announce fails to decode (``json.JSONDecodeError``).
    """
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code in RETRY_STATUS
    return isinstance(
        exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError, json.JSONDecodeError)
    )


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429 / 503 answer asked to wait (``Retry-After``), if it said."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        value = exc.response.headers.get("Retry-After")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None
    return None


def describe(exc: BaseException, *, secret: str | None = None) -> str:
    """One line naming a failure and the server's reason: ``"HTTP 429 Too Many Requests: slow down (Retry-After 30s)"``.

    An HTTP error gives its status, phrase and ``server_message`` (what the Hub said in ``X-Error-Message`` or the
    body); anything else its type and first line. Control characters are escaped and ``secret`` (a token) is masked.
    """
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, RetriesStoppedError) and exc.__cause__ is not None:
        return f"{describe(exc.__cause__, secret=secret)}; {exc}"
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        response = exc.response
        said = " ".join((exc.server_message or "").split()) or response.reason_phrase
        text = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        text += f": {said}" if said and said != response.reason_phrase else ""
        if (wait := retry_after(exc)) is not None:
            text += f" (Retry-After {wait:g}s)"
    else:
        lines = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")
    text = escape_for_display(text[:500])
    return text.replace(secret, "***") if secret else text


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    deadline: float | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    before_try: Callable[[], None] | None = None,
    secret: str | None = None,
) -> T:
    """``fn()``, tried again on transient failures with jittered exponential backoff; lasting ones raise at once.

    Args:
        fn: the call; it should bound its own requests (:func:`session_timeout`, or a ``timeout=`` argument).
        what: what the call does, for the log (``"model info of acme/vit"``).
        policy: retries, waits and the longest ``Retry-After`` honoured.
        deadline: a ``time.monotonic()`` instant after which no try starts; a wait that would end later gives up.
        transient: which failures are worth another try (default :func:`is_transient`).
        before_try: called before every try (a rate limiter).
        secret: a token to mask in the log.

    Raises:
        The last failure when it is not transient or the retries ran out; :class:`RetriesStoppedError` (from the
        last failure) when the deadline or a ``Retry-After`` past ``policy.max_retry_after`` stopped the retries.
    """
    for attempt in range(policy.max_retries + 1):
        if before_try is not None:
            before_try()
        apply_session_timeout()
        try:
            return fn()
        except Exception as exc:
            if not transient(exc) or attempt == policy.max_retries:
                raise
            wait_before_retry(exc, attempt, what=what, policy=policy, deadline=deadline, secret=secret)
    raise AssertionError("unreachable: the last try returns or raises")


def wait_before_retry(
    exc: Exception,
    attempt: int,
    *,
    what: str,
    policy: RetryPolicy,
    deadline: float | None = None,
    secret: str | None = None,
) -> None:
    """Sleep before try ``attempt + 2`` of a call that failed with ``exc``: ``Retry-After`` if sent, else backoff.

    For loops :func:`call_with_retries` cannot wrap (a paged listing consumed as it comes).

    Raises:
        RetriesStoppedError: from ``exc``, when the wait would pass ``deadline`` or the server asked for more than
            ``policy.max_retry_after``.
    """
    asked = retry_after(exc)
    if asked is not None and asked > policy.max_retry_after:
        raise RetriesStoppedError(f"the Hub asked to wait {asked:g}s; try again later") from exc
    delay = asked if asked is not None else _backoff(policy, attempt)
    if deadline is not None and time.monotonic() + delay >= deadline:
        raise RetriesStoppedError("the time budget ran out before another try") from exc
    logger.info(
        "%s failed (%s); retry %d/%d in %.2fs",
        escape_for_display(what),
        describe(exc, secret=secret),
        attempt + 1,
        policy.max_retries,
        delay,
    )
    time.sleep(delay)


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    return min(policy.max_backoff, policy.backoff * 2**attempt) * random.uniform(0.5, 1.0)


# ---- the shared session's timeout ------------------------------------------------------------------------------------

_timeout_lock = threading.Lock()
_timeout_users: list[float] = []  # the timeouts asked for by the blocks now running, in order
_timeout_restore: dict[int, Any] = {}  # id(session) -> its own timeout, for the sessions we changed


@contextmanager
def session_timeout(seconds: float) -> Iterator[None]:
    """Bound every request of ``huggingface_hub``'s shared session while the block runs.

    The session the client shares (``get_session()``) is built with no timeout, and most ``HfApi`` methods take none,
    so a stalled answer blocks forever. Inside the block a session without a timeout of its own gets
    ``httpx2.Timeout(seconds)`` (the smallest asked for by any block running); a timeout the user configured is left
    alone. Leaving the last block restores what was there. Thread-safe; blocks may nest and overlap.
    """
    with _timeout_lock:
        _timeout_users.append(seconds)
    apply_session_timeout()
    try:
        yield
    finally:
        with _timeout_lock:
            _timeout_users.remove(seconds)
            if not _timeout_users:
                _restore_session_timeouts()


def apply_session_timeout() -> None:
    """Give the current shared session the timeout of the running :func:`session_timeout` blocks, if it has none.

    Call before a try as well: the client closes and rebuilds its session after a connection error, and the new one
    comes without a timeout.
    """
    import httpx2
    from huggingface_hub.utils import get_session

    with _timeout_lock:
        if not _timeout_users:
            return
        session = get_session()
        own = session.timeout
        if id(session) not in _timeout_restore and own.read is not None:
            return  # the user set a timeout: theirs wins
        _timeout_restore.setdefault(id(session), own)
        session.timeout = httpx2.Timeout(min(_timeout_users))


def _restore_session_timeouts() -> None:
    from huggingface_hub.utils import get_session

    session = get_session()
    if id(session) in _timeout_restore:
        session.timeout = _timeout_restore[id(session)]
    _timeout_restore.clear()


def read_capped(response: Any, cap: int, deadline: float) -> tuple[bytes, bool]:
    """The body of a streamed answer up to ``cap`` bytes and whether there was more; the rest is never read.

    Raises:
        RetriesStoppedError: the model's time budget ran out while reading (a server that trickles bytes stays
            within each read timeout, not within the budget).
    """
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
        if time.monotonic() > deadline:
            raise RetriesStoppedError("the per-model time budget ran out while reading")
    return b"".join(chunks), False


class RateLimiter:
    """Spaces calls at least ``1 / per_second`` apart across threads (``None``: no limit)."""

    def __init__(self, per_second: float | None) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError(f"requests_per_second={per_second} must be positive; pass None for no limit")
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Sleep until this caller's slot (at once without a limit)."""
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        time.sleep(max(0.0, slot - now))
