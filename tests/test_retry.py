"""The one retry helper: what is worth another try, Retry-After, deadlines, one-line reasons, bounded session."""

from __future__ import annotations

import json
import time

import httpx2
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import get_session

from hf_spider.hub.retry import (
    RetriesStoppedError,
    RetryPolicy,
    call_with_retries,
    describe,
    is_transient,
    session_timeout,
)
from hf_spider.testing import LoopbackHub

FAST = RetryPolicy(max_retries=3, backoff=0.01, max_backoff=0.02, timeout=2.0)


def http_error(status: int, message: str = "", **headers: str) -> HfHubHTTPError:
    request = httpx2.Request("GET", "http://127.0.0.1/api/x")
    response = httpx2.Response(status, headers={"X-Error-Message": message, **headers} if message else headers)
    response.request = request
    return HfHubHTTPError(f"{status} error", response=response, server_message=message or None)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (http_error(429), True),
        (http_error(503), True),
        (http_error(408), True),
        (http_error(404), False),
        (http_error(403), False),
        (httpx2.RemoteProtocolError("peer closed connection without sending complete message body"), True),
        (httpx2.ReadError("[Errno 104] Connection reset by peer"), True),
        (httpx2.ReadTimeout("timed out"), True),
        (json.JSONDecodeError("Expecting value", "{", 1), True),
        (ValueError("bad"), False),
    ],
)
def test_what_is_worth_another_try(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_retries_until_success_and_lasting_errors_raise_at_once() -> None:
    failures = [httpx2.RemoteProtocolError("cut"), http_error(503)]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    assert call_with_retries(flaky, what="flaky", policy=FAST) == "ok"
    calls = []

    def refused() -> None:
        calls.append(1)
        raise http_error(403, "no rights")

    with pytest.raises(HfHubHTTPError):
        call_with_retries(refused, what="refused", policy=FAST)
    assert len(calls) == 1


def test_retry_after_is_followed_and_a_long_one_ends_with_the_reason() -> None:
    answers = [http_error(429, "slow down", **{"Retry-After": "0.3"})]

    def limited() -> str:
        if answers:
            raise answers.pop(0)
        return "ok"

    start = time.monotonic()
    assert call_with_retries(limited, what="limited", policy=FAST) == "ok"
    assert time.monotonic() - start >= 0.3
    with pytest.raises(RetriesStoppedError) as info:
        call_with_retries(
            lambda: (_ for _ in ()).throw(http_error(429, "slow down", **{"Retry-After": "3600"})),
            what="limited",
            policy=FAST,
        )
    assert describe(info.value) == (
        "HTTP 429 Too Many Requests: slow down (Retry-After 3600s); the Hub asked to wait 3600s; try again later"
    )


def test_a_deadline_stops_the_retries() -> None:
    def always_503() -> None:
        raise http_error(503)

    slow = RetryPolicy(max_retries=50, backoff=0.2, max_backoff=0.2)
    start = time.monotonic()
    with pytest.raises(RetriesStoppedError, match="time budget"):
        call_with_retries(always_503, what="down", policy=slow, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - start < 3  # without the deadline: 50 waits of 0.1-0.2 s


def test_describe_keeps_the_servers_reason_on_one_line_and_masks_the_token() -> None:
    assert describe(http_error(500, "database\nis down")) == "HTTP 500 Internal Server Error: database is down"
    assert describe(httpx2.ReadTimeout("timed out\nmore")) == "ReadTimeout: timed out"
    assert describe(ValueError("token hf_abc leaked \x1b[2J"), secret="hf_abc") == (
        "ValueError: token *** leaked \\u001b[2J"
    )


def test_session_timeout_bounds_a_stalled_answer_and_is_restored(loopback_hub: LoopbackHub) -> None:
    loopback_hub.faults.add("stall", match="whoami", stall_s=8.0, times=1)
    api = HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token)
    own = get_session().timeout
    start = time.monotonic()
    with session_timeout(0.5), pytest.raises(httpx2.TimeoutException):
        api.whoami()
    assert time.monotonic() - start < 5  # the client alone would wait out the 8 s stall
    assert get_session().timeout == own
    with session_timeout(0.5):
        assert call_with_retries(api.whoami, what="whoami", policy=FAST)["name"] == "tester"
