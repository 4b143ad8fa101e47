"""Shortlist ordering and its JSON / pandas / markdown forms."""

from __future__ import annotations

import json

import pytest

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


def test_a_candidate_with_nothing_to_score_by_is_strict_json_and_reads_back_last() -> None:
    """The size prior scores a model of unknown size -inf; ``-Infinity`` is no JSON (a browser's ``JSON.parse`` and
    every strict parser refuse it), so it is written as null and read back as -inf."""
    shortlist = Shortlist.from_scores({"org/known": 18.2, "org/unknown": float("-inf")}, task="t", ranker="size_prior")
    text = shortlist.to_json()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert data["entries"][1] == {**data["entries"][1], "model_id": "org/unknown", "score": None}
    back = Shortlist.from_json(text)
    assert back == shortlist and back[1].score == float("-inf")
    assert shortlist.to_pandas().score.tolist() == [18.2, float("-inf")]  # a frame is no JSON: it keeps the number


def test_json_of_a_newer_writer_keeps_the_known_fields() -> None:
    data = make().to_dict()
    data["entries"][0]["field_of_a_later_version"] = 1
    assert Shortlist.from_dict(data) == make()


def test_pandas_and_markdown() -> None:
    shortlist = make()
    frame = shortlist.to_pandas()
    assert list(frame.model_id) == shortlist.model_ids and frame.loc[0, "num_parameters"] == 86_000_000
    markdown = shortlist.to_markdown()
    assert "| 1 | org/c | 91 | 86.0M | own transfer records; scorer |" in markdown
    assert "| 2 | org/a | ? | ? | size only |" in markdown  # no percentile of its own: not made up
    assert "> percentile: expected percentile of the transfer accuracy" in markdown
    assert "org/c" in str(shortlist).splitlines()[2]


def test_raw_scores_are_shown_when_no_entry_has_a_percentile() -> None:
    shortlist = Shortlist.from_scores(
        {"org/a": -0.5, "org/b": -0.7},
        task="t",
        ranker="spider",
        num_parameters={"org/a": 229_799_953},
        reasons={"org/b": ["license unknown"]},
        metadata={"notes": ["the bundled pool is not pinned"]},
    )
    lines = shortlist.to_table().splitlines()
    assert lines[1].split() == ["rank", "model", "score", "params", "notes"]
    assert lines[2].split() == ["1", "org/a", "-0.5000", "229.8M"]
    assert lines[3].split() == ["2", "org/b", "-0.7000", "?", "license", "unknown"]  # no ranker name on each row
    assert (
        lines[4].startswith("note: score: raw score of spider") and lines[5] == "note: the bundled pool is not pinned"
    )


def test_a_failed_entry_says_why() -> None:
    from dataclasses import replace

    shortlist = make()
    failed = shortlist.with_entries([shortlist[0], replace(shortlist[1], error="out of memory")])
    assert failed.display_rows()[1][1][-1] == "failed: out of memory"


# ----------------------------------------------------------------------------------------------- plots


def test_hub_columns_appear_when_the_pool_knows_them_and_csv_is_the_table_shown() -> None:
    import io

    import pandas as pd

    from hf_spider.outputs.shortlist import ShortlistEntry

    bare = make()
    assert bare.display_rows()[0] == ["rank", "model", "percentile", "params", "notes"]
    known = ShortlistEntry("acme/vit", 0.5, 1, license="mit", downloads=1_234_567, last_modified="2024-05-01T10:00:00Z")
    shortlist = bare.with_entries([known, *bare.entries[:1]])
    header, rows = shortlist.display_rows()
    assert header == ["rank", "model", "percentile", "params", "license", "downloads", "last modified", "notes"]
    assert rows[0][4:7] == ["mit", "1.2M", "2024-05-01"] and rows[1][4:7] == ["?", "?", "?"]
    parsed = pd.read_csv(io.StringIO(shortlist.to_csv()), dtype=str, keep_default_na=False)
    assert [list(parsed.columns), *parsed.values.tolist()] == [header, *rows]
    assert shortlist.to_markdown().splitlines()[3] == "|---:|---|---:|---:|---|---:|---|---|"
    assert known.url == "https://huggingface.co/acme/vit"


def _ranked(percentiles: bool) -> Shortlist:
    ids = [f"owner-{i}/model-with-a-rather-long-name-finetuned-on-something-{i}" for i in range(6)]
    return Shortlist.from_scores(
        {m: -0.1 * i for i, m in enumerate(ids)},  # every raw score negative, as the default scorer's are
        task="t",
        ranker="spider",
        num_parameters={m: 125_000_000 + 500_000 * i for i, m in enumerate(ids)},  # bunched sizes
        expected_percentile={m: 90.0 - 10 * i for i, m in enumerate(ids)} if percentiles else None,
        metadata={"candidates": 50},
    )


def test_bars_grow_with_quality_for_percentiles_and_for_negative_raw_scores() -> None:
    for percentiles in (True, False):
        shortlist = _ranked(percentiles)
        ax = shortlist.plot_scores().axes[0]
        widths = [bar.get_width() for bar in ax.patches]
        assert widths == sorted(widths, reverse=True) and widths[-1] > 0  # the best has the longest bar
        label = ax.get_xlabel().replace("\n", " ")
        assert ("expected percentile of the transfer accuracy" in label) == percentiles
        assert ("raw score of spider" in label) != percentiles
    ax = _ranked(True).plot_scores().axes[0]
    assert [bar.get_x() + bar.get_width() for bar in ax.patches] == [90.0, 80.0, 70.0, 60.0, 50.0, 40.0]
    low, high = ax.get_xlim()
    assert 0 < low < 40 and 90 < high <= 100  # zoomed to the listed range, 40 and 90 do not look alike
    assert [t.get_text().strip() for t in ax.texts] == ["90", "80", "70", "60", "50", "40"]  # values on the bars


def test_long_ids_keep_their_owner() -> None:
    from hf_spider.outputs.plots import short_id

    long = "facebook/convnext-xlarge-224-22k-1k-finetuned-on-a-very-long-dataset-name"
    short = short_id(long)
    assert len(short) <= 40 and short.startswith("facebook/convnext") and short.endswith("dataset-name")
    assert short_id("google/vit-base-patch16-224") == "google/vit-base-patch16-224"
    assert short_id("x" * 30 + "/" + "y" * 30).startswith("x" * 15 + "…/")


def test_size_plot_ticks_are_readable_and_labels_stay_in_the_frame() -> None:
    figure = _ranked(True).plot_size_vs_score()
    figure.canvas.draw()
    ax = figure.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
    assert len(ticks) >= 2 and all(t.endswith(("K", "M", "B")) for t in ticks), ticks
    assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]  # no bunched minor labels
    frame = ax.get_window_extent()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert boxes and all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
