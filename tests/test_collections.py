"""Shortlist -> Hub collection against the loopback Hub: push, push again, resume after a failure half way, refusals."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi

from hf_spider.errors import CollectionPushError
from hf_spider.hub import retry
from hf_spider.outputs.collections import collection_note
from hf_spider.outputs.shortlist import Shortlist
from hf_spider.testing import DEFAULT_TOKEN, DEFAULT_USER, LoopbackHub

DATE = "2026-01-31"
MODELS = [f"{DEFAULT_USER}/model-{c}" for c in "abcde"]


def shortlist_of(scores: dict[str, float], task: str = "beans") -> Shortlist:
    return Shortlist.from_scores(scores, task=task, ranker="collab_prior", num_parameters=dict.fromkeys(scores, 10**6))


def first_ranking() -> Shortlist:
    return shortlist_of({m: 1.0 - i / 10 for i, m in enumerate(MODELS)})


# Retries as in production but with short waits, and a request timeout short enough for stalls to cost a second.
FAST = retry.RetryPolicy(max_retries=6, backoff=0.01, max_backoff=0.05, timeout=0.5, max_retry_after=5)


@pytest.fixture
def hub(loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> LoopbackHub:
    monkeypatch.setattr(retry, "WRITE_POLICY", FAST)
    for model_id in MODELS:
        loopback_hub.add_repo(model_id, {"config.json": "{}"}, pipeline_tag="image-classification")
    return loopback_hub


def read_back(title: str) -> list[tuple[str, str | None]]:
    """(model id, note) in collection order, through the client's own ``get_collection``."""
    api = HfApi(token=DEFAULT_TOKEN)
    (listed,) = [c for c in api.list_collections(owner=DEFAULT_USER) if c.title == title]
    collection = api.get_collection(listed.slug)
    return [(item.item_id, item.note) for item in sorted(collection.items, key=lambda i: i.position)]


def expected(shortlist: Shortlist, date: str = DATE) -> list[tuple[str, str]]:
    return [(e.model_id, collection_note(e, shortlist, date=date)) for e in shortlist]


def test_push_creates_a_collection_in_rank_order_and_returns_its_url(hub) -> None:
    shortlist = first_ranking()
    url = shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert url.startswith(f"{hub.endpoint}/collections/{DEFAULT_USER}/beans-models-")
    assert read_back("Beans models") == expected(shortlist)
    assert expected(shortlist)[2][1].startswith("rank 3 · collab_prior 0.8 · task beans · 2026-01-31")


def test_pushing_twice_is_a_no_op_and_a_new_ranking_updates_in_place(hub) -> None:
    shortlist = first_ranking()
    url = shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    hub.clear_requests()
    assert shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE) == url
    assert hub.count("/api/collections", method="POST") == hub.count("/api/collections", method="PATCH") == 0
    assert read_back("Beans models") == expected(shortlist)

    reordered = shortlist_of({m: 0.1 + i / 10 for i, m in enumerate(MODELS)})  # the order reversed, new scores
    assert reordered.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date="2026-02-01") == url
    assert read_back("Beans models") == expected(reordered, "2026-02-01")
    assert [m for m, _ in read_back("Beans models")] == MODELS[::-1]


def test_a_push_stopped_after_two_of_five_models_resumes(hub) -> None:
    shortlist = first_ranking()
    hub.delete_repo(MODELS[2])  # the third add fails with 404: the push stops with two models in
    with pytest.raises(CollectionPushError, match=r"stopped with 2 of 5 models.*run the same push again") as info:
        shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert info.value.url is not None and [m for m, _ in read_back("Beans models")] == MODELS[:2]

    hub.add_repo(MODELS[2], {"config.json": "{}"}, pipeline_tag="image-classification")
    assert shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE) == info.value.url
    assert read_back("Beans models") == expected(shortlist)


def test_a_lost_answer_after_the_hub_applied_an_add_converges_in_the_same_push(hub) -> None:
    shortlist = first_ranking()
    rule = hub.faults.add("truncate", match=r"POST /api/collections/.+/items", times=1)
    shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert rule.hits == 1 and read_back("Beans models") == expected(shortlist)


def test_models_dropped_from_the_shortlist_are_removed(hub) -> None:
    first_ranking().push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    smaller = shortlist_of({MODELS[4]: 0.9, MODELS[1]: 0.5})
    smaller.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert read_back("Beans models") == expected(smaller)


def test_dry_run_plans_without_writing(hub) -> None:
    hub.clear_requests()
    calls = first_ranking().push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE, dry_run=True)
    assert [c.method for c in calls] == ["create_collection"] + ["add_collection_item"] * 5
    assert hub.count("/api/collections", method="POST") == 0
    first_ranking().push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert first_ranking().push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE, dry_run=True) == []


def test_a_namespace_the_token_cannot_write_is_refused_before_anything_is_pushed(hub) -> None:
    with pytest.raises(CollectionPushError, match=r"may not create collections of 'someone-else'.*write token"):
        first_ranking().push_to_hub_collection("Beans models", namespace="someone-else", token=DEFAULT_TOKEN)
    assert hub.collections == {}


def test_an_invalid_token_is_refused_with_one_line(hub) -> None:
    with pytest.raises(CollectionPushError, match="HTTP 401"):
        first_ranking().push_to_hub_collection("Beans models", token="hf_not_a_token")


def test_cli_options_push_with_the_environment_token(hub, monkeypatch) -> None:
    import argparse

    from hf_spider.outputs.collections import add_push_arguments, push_from_args

    parser = argparse.ArgumentParser()
    add_push_arguments(parser)
    assert push_from_args(first_ranking(), parser.parse_args([])) is None
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    url = push_from_args(first_ranking(), parser.parse_args(["--push-collection", "Beans models"]))
    assert url is not None and read_back("Beans models") == expected(first_ranking(), _today())


def _today() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def test_an_empty_shortlist_is_refused(hub) -> None:
    with pytest.raises(CollectionPushError, match="empty"):
        shortlist_of({}).push_to_hub_collection("Beans models", token=DEFAULT_TOKEN)


def test_an_empty_title_or_namespace_is_refused_before_any_request(hub) -> None:
    """``namespace=""`` used to fall back to the token's user; ``title=" "`` reached the Hub."""
    with pytest.raises(CollectionPushError, match="the collection title is empty"):
        first_ranking().push_to_hub_collection(" ", token=DEFAULT_TOKEN)
    with pytest.raises(CollectionPushError, match="the collection namespace is empty"):
        first_ranking().push_to_hub_collection("Beans models", namespace="", token=DEFAULT_TOKEN)
    assert hub.collections == {} and hub.count("/api/") == 0


# Every request a push makes, by what it does, as "METHOD /path?query" patterns of the loopback Hub's fault plan.
ENDPOINTS = {
    "whoami": r"^GET /api/whoami-v2",
    "list": r"^GET /api/collections\?",
    "read": r"^GET /api/collections/",
    "create": r"^POST /api/collections\?",
    "add": r"^POST /api/collections/.+/items",
    "update": r"^PATCH /api/collections/.+/items/",
    "delete": r"^DELETE /api/collections/.+/items/",
}
WRITE_FAULTS = ("429", "500", "503", "truncate", "stall", "stall_after")


@pytest.mark.parametrize("kind", WRITE_FAULTS)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_each_hostile_answer_on_each_request_is_retried_to_the_same_collection(hub, endpoint: str, kind: str) -> None:
    """A fault on one kind of request: the push, and a second one (reordered, smaller), converge without a re-run."""
    rule = hub.faults.add(kind, match=ENDPOINTS[endpoint], times=1, retry_after=0, stall_s=1.0)
    first = first_ranking()
    first.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert read_back("Beans models") == expected(first)
    second = shortlist_of({MODELS[4]: 0.9, MODELS[2]: 0.8, MODELS[0]: 0.5})  # reordered, two models dropped
    second.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date="2026-02-01")
    assert rule.hits == 1, "the fault was never injected"
    assert read_back("Beans models") == expected(second, "2026-02-01")
    assert len(hub.collections) == 1  # a creation whose answer was lost was not made twice


def test_pushes_under_25_percent_write_faults_converge_without_re_runs(hub) -> None:
    kinds = ("429", "500", "503", "truncate", "stall_after")
    rule = hub.faults.add(*kinds, match=r"/api/(whoami|collections)", probability=0.25, retry_after=0, stall_s=1.0)
    rankings = [first_ranking(), shortlist_of({m: i / 10 for i, m in enumerate(MODELS)}), shortlist_of({MODELS[1]: 1})]
    for n in range(6):
        shortlist = rankings[n % 3]
        rule.probability = 0.25
        shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
        rule.probability = 0.0  # the test's own read-back goes through the same Hub
        assert read_back("Beans models") == expected(shortlist)
    assert rule.hits > 10


def test_a_failure_that_outlasts_the_retries_is_one_line_with_the_servers_reason(hub) -> None:
    hub.faults.add("429", match=ENDPOINTS["add"], retry_after=9)  # longer than FAST.max_retry_after
    with pytest.raises(CollectionPushError) as info:
        first_ranking().push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    message = str(info.value)
    assert "\n" not in message and info.value.url is not None
    assert "HTTP 429 Too Many Requests: injected 429 (Retry-After 9s)" in message
    hub.faults.clear()
    hub.faults.add("503", match=ENDPOINTS["whoami"])
    with pytest.raises(CollectionPushError, match=r"could not check the token of .*HTTP 503 Service Unavailable"):
        first_ranking().push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)


def test_cli_push_under_faults_converges_and_a_lasting_failure_is_one_line_exit_2(
    hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hf_spider.cli import main
    from hf_spider.hub.index import load_bundled_index

    models = [r.repo_id for r in load_bundled_index() if r.modality == "image"][:3]
    for model_id in models:
        hub.add_repo(model_id, {"config.json": "{}"})
    argv = ["rank", "--labels", "cat,dog", "--modality", "image", "--models", ",".join(models)]
    argv += ["--push-collection", "CLI models"]
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    rule = hub.faults.add("truncate", "503", "stall_after", match=r"/api/(whoami|collections)", probability=0.25)
    assert main(argv) == 0
    rule.probability = 0.0
    assert sorted(m for m, _ in read_back("CLI models")) == sorted(models)
    capsys.readouterr()
    hub.faults.clear()
    hub.faults.add("truncate", match=r"/api/(whoami|collections)")  # every answer cut short, for good
    assert main(argv) == 2
    err = capsys.readouterr().err  # the progress bar, then the error
    (line,) = [line for line in err.splitlines() if "error" in line.lower()]
    assert "Traceback" not in err
    assert line.startswith("hf-spider rank: error: could not check the token of the Hub account (RemoteProtocolError")
