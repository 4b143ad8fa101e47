"""Shortlist -> Hub collection against the loopback Hub: push, push again, resume after a failure half way, refusals."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi

from hf_spider.errors import CollectionPushError
from hf_spider.outputs.collections import collection_note
from hf_spider.outputs.shortlist import Shortlist
from hf_spider.testing import DEFAULT_TOKEN, DEFAULT_USER, LoopbackHub

DATE = "2026-01-31"
MODELS = [f"{DEFAULT_USER}/model-{c}" for c in "abcde"]


def shortlist_of(scores: dict[str, float], task: str = "beans") -> Shortlist:
    return Shortlist.from_scores(scores, task=task, ranker="collab_prior", num_parameters=dict.fromkeys(scores, 10**6))


def first_ranking() -> Shortlist:
    return shortlist_of({m: 1.0 - i / 10 for i, m in enumerate(MODELS)})


@pytest.fixture
def hub(loopback_hub: LoopbackHub) -> LoopbackHub:
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


def test_a_lost_answer_after_the_hub_applied_an_add_still_converges(hub) -> None:
    shortlist = first_ranking()
    hub.faults.add("truncate", match=r"POST /api/collections/.+/items", times=1)
    with pytest.raises(CollectionPushError, match="stopped with 0 of 5"):
        shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    shortlist.push_to_hub_collection("Beans models", token=DEFAULT_TOKEN, date=DATE)
    assert read_back("Beans models") == expected(shortlist)


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
