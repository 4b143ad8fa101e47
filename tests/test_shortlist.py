"""Shortlist ordering and its JSON / pandas / markdown forms."""

from __future__ import annotations

from hf_spider.outputs.shortlist import Shortlist


def make() -> Shortlist:
    return Shortlist.from_scores(
        {"org/b": 0.5, "org/a": 0.5, "org/c": 0.9},
        task="beans",
        ranker="spider",
        num_parameters={"org/c": 86_000_000},
        reasons={"org/c": ["scorer"]},
    )


def test_sorted_by_score_then_id() -> None:
    shortlist = make()
    assert shortlist.model_ids == ["org/c", "org/a", "org/b"]
    assert [e.rank for e in shortlist] == [1, 2, 3]


def test_top_k_cuts() -> None:
    shortlist = Shortlist.from_scores({"a": 1.0, "b": 2.0, "c": 3.0}, task="t", ranker="r", top_k=2)
    assert shortlist.model_ids == ["c", "b"]


def test_json_round_trip() -> None:
    shortlist = make()
    assert Shortlist.from_json(shortlist.to_json()) == shortlist


def test_pandas_and_markdown() -> None:
    shortlist = make()
    frame = shortlist.to_pandas()
    assert list(frame.model_id) == shortlist.model_ids and frame.loc[0, "num_parameters"] == 86_000_000
    markdown = shortlist.to_markdown()
    assert "| 1 | org/c | 0.9000 | 86.0M | scorer |" in markdown
    assert "org/c" in str(shortlist).splitlines()[2]
