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
        evidence={"org/c": "records", "org/a": "size"},
        confidence={"org/c": 0.8, "org/a": 0.1},
        expected_percentile={"org/c": 91.0},
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
    assert shortlist[0].evidence == "records" and shortlist[0].confidence == 0.8
    assert shortlist[0].expected_percentile == 91.0 and shortlist[2].evidence is None


def test_json_of_a_newer_writer_keeps_the_known_fields() -> None:
    data = make().to_dict()
    data["entries"][0]["field_of_a_later_version"] = 1
    assert Shortlist.from_dict(data) == make()


def test_pandas_and_markdown() -> None:
    shortlist = make()
    frame = shortlist.to_pandas()
    assert list(frame.model_id) == shortlist.model_ids and frame.loc[0, "num_parameters"] == 86_000_000
    markdown = shortlist.to_markdown()
    assert "| 1 | org/c | 0.9000 | 86.0M | scorer |" in markdown
    assert "org/c" in str(shortlist).splitlines()[2]
