"""Hub values made safe at the boundary: escaping, caps, bounded YAML, and records that can always be written."""

from __future__ import annotations

import json
import resource
import time
from dataclasses import replace

import pytest

from hf_spider.hub.cards import config_fields, error_kinds, load_card_metadata, parse_card
from hf_spider.hub.index import read_index, write_index
from hf_spider.hub.records import EvalResult, ModelRecord
from hf_spider.hub.sanitize import (
    SANITISED_KEY,
    HubLimits,
    escape_for_display,
    escape_unsafe,
    sanitize_record,
    sanitize_value,
)
from hf_spider.hub.snapshot import CrawlJournal, index_stats
from hf_spider.testing.repos import billion_laughs

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
LONE = "\ud83d"  # the first half of an emoji's surrogate pair, alone


def test_unsafe_characters_are_escaped_and_the_rest_passes() -> None:
    assert escape_unsafe("plain ascii, café, 日本語, עברית, 🙂") == ("plain ascii, café, 日本語, עברית, 🙂", 0)
    assert escape_unsafe(f"cat{RLO}gpj.exe") == ("cat\\u202egpj.exe", 1)
    assert escape_unsafe(f"{LONE}x\x1b[2J\x00") == ("\\ud83dx\\u001b[2J\\u0000", 3)
    assert escape_unsafe("a\tb\nc") == ("a\\u0009b\\u000ac", 2)
    assert escape_unsafe("a\tb\r\nc\x07", multiline=True) == ("a\tb\r\nc\\u0007", 1)
    assert escape_for_display(f"model{RLO}") == "model\\u202e"


def test_sanitised_values_encode_as_utf8_and_sanitising_twice_changes_nothing() -> None:
    value = {"labels": [LONE, f"x{RLO}"], 3: {"when": __import__("datetime").date(2024, 1, 2)}, "big": 10**40}
    clean, changes = sanitize_value(value)
    json.dumps(clean, sort_keys=True, ensure_ascii=False).encode("utf-8")  # no UnicodeEncodeError, no TypeError
    assert clean == {"labels": ["\\ud83d", "x\\u202e"], "3": {"when": "2024-01-02"}, "big": None}
    assert [c.split(":")[0] for c in changes] == ["unsafe_text", "oversized"]
    assert sanitize_value(clean) == (clean, [])


def test_caps_on_strings_items_depth_and_nodes() -> None:
    limits = HubLimits(string_chars=5, items=3, depth=2, nodes=10)
    assert sanitize_value("abcdefgh", limits=limits)[0] == "abcde"
    assert sanitize_value([1, 2, 3, 4, 5], limits=limits)[0] == [1, 2, 3]
    assert sanitize_value({"a": {"b": {"c": 1}}}, limits=limits)[0] == {"a": {"b": None}}
    shared = [[1, 2, 3]] * 3  # a structure that shares its parts, as YAML aliases build
    clean, changes = sanitize_value({"x": shared, "y": shared}, limits=HubLimits(nodes=10))
    assert sum(len(part) for part in clean["x"] + clean.get("y", [])) < 10
    assert any("nested values" in c for c in changes)


def test_record_notes_what_changed_once_as_error_kinds_and_in_extra() -> None:
    record = ModelRecord(
        repo_id=f"acme/model{RLO}",
        label_names=tuple(f"l{i}" for i in range(20_000)),
        card_text="x" * 100_000,
        eval_results=(EvalResult(dataset=LONE, metric="accuracy", value=0.5),),
        error="gated: acme/model needs accepted terms; accept them",
        extra={"widget": [{"text": "\x1b[31mred"}]},
    )
    clean = sanitize_record(record)
    assert clean.repo_id == "acme/model\\u202e" and len(clean.label_names or ()) == 10_000
    assert len(clean.card_text or "") == 65_536 and clean.eval_results[0].dataset == "\\ud83d"  # type: ignore[index]
    assert clean.extra["widget"] == [{"text": "\\u001b[31mred"}]
    assert error_kinds(clean.error) == ["gated", "unsafe_text", "oversized"]
    assert "oversized: label_names kept the first 10000 of 20000 items" in clean.extra[SANITISED_KEY]
    assert sanitize_record(clean) is clean
    completed = sanitize_record(replace(clean, architectures=(f"Vit{LONE}",)))  # a record completed later
    assert completed.extra[SANITISED_KEY][: len(clean.extra[SANITISED_KEY])] == clean.extra[SANITISED_KEY]
    assert completed.error is not None and completed.error.count("repo_id") == 1
    assert index_stats([completed]).errors == {"gated": 1, "unsafe_text": 1, "oversized": 1}


def test_a_sanitised_record_round_trips_through_the_journal_and_both_index_formats(tmp_path) -> None:
    record = sanitize_record(ModelRecord(repo_id=f"a/b{LONE}", label_names=(LONE, f"{RLO}x"), extra={"k": LONE}))
    for name in ("index.jsonl", "index.parquet"):
        write_index([record], tmp_path / name)
        assert read_index(tmp_path / name) == [record]
    with CrawlJournal(tmp_path / "j.jsonl") as journal:
        assert journal.append(record) == record
    assert CrawlJournal(tmp_path / "j.jsonl").replay() == {record.repo_id: record}


def test_a_value_no_index_row_may_hold_is_dropped_and_noted_and_the_index_stays_readable(tmp_path) -> None:
    """What a hostile repo sends (a negative count, a list for a tag) once made every later read of the index fail;
    the rule ``read_index`` reads each row with is now the rule each crawled record is written with."""
    record = ModelRecord(
        repo_id="evil/model",
        pipeline_tag=["image-classification", "x"],  # type: ignore[arg-type]
        library_name={"x": 1},  # type: ignore[arg-type]
        num_parameters=-3000,
        input_size=-224,
        downloads=-5,
        likes=-3,
        tags=("vision", 5),  # type: ignore[arg-type]
    )
    clean = sanitize_record(record)
    dropped = ("pipeline_tag", "library_name", "num_parameters", "input_size", "downloads", "likes")
    assert [getattr(clean, name) for name in dropped] == [None] * 6 and clean.tags == ("vision", "5")
    assert error_kinds(clean.error) == ["bad_value"]
    assert (
        "bad_value: input_size was dropped ('input_size' is -224; a count is never negative)"
        in clean.extra[SANITISED_KEY]
    )
    assert sanitize_record(clean) is clean
    for name in ("index.jsonl", "index.parquet"):
        write_index([clean], tmp_path / name)
        assert read_index(tmp_path / name) == [clean]
    assert index_stats([clean]).errors == {"bad_value": 1}  # a list pipeline tag made the counts raise TypeError


def test_an_infinite_negative_or_nan_number_is_dropped_and_noted_as_bad_value(tmp_path) -> None:
    """A card may state ``.inf`` or a negative GMACs: the sanitiser made inf None without a note, and kept -2."""
    record = ModelRecord(
        repo_id="evil/numbers",
        gmacs=float("inf"),
        imagenet_top1=-2.0,
        eval_results=(EvalResult(dataset="imagenet-1k", metric="accuracy", value=float("nan")),),
        extra={"co2": float("-inf")},
    )
    clean = sanitize_record(record)
    assert (clean.gmacs, clean.imagenet_top1, clean.eval_results[0].value) == (None, None, None)  # type: ignore[index]
    assert "co2" in clean.extra and clean.extra["co2"] is None
    assert error_kinds(clean.error) == ["bad_value"]
    assert clean.extra[SANITISED_KEY] == [
        "bad_value: eval_results held 1 infinite or NaN number, dropped",
        "bad_value: gmacs held 1 infinite or NaN number, dropped",
        "bad_value: imagenet_top1 was dropped ('imagenet_top1' is -2.0; a measure is never negative)",
        "bad_value: extra held 1 infinite or NaN number, dropped",
    ]
    assert sanitize_record(clean) is clean
    for name in ("index.jsonl", "index.parquet"):
        write_index([clean], tmp_path / name)
        assert read_index(tmp_path / name) == [clean]


def test_the_journal_never_holds_a_poison_record(tmp_path) -> None:
    """A record nobody sanitised (a lone surrogate in a label) is written as a failed record, so resumes progress."""
    poison = ModelRecord(repo_id="acme/poison", sha="1" * 40, label_names=("ok", LONE))
    journal = CrawlJournal(tmp_path / "index.jsonl")
    with journal:
        written = journal.append(poison)
        journal.append(ModelRecord(repo_id="acme/next", sha="2" * 40))
    assert written.repo_id == "acme/poison" and written.sha == poison.sha and written.label_names is None
    assert error_kinds(written.error) == ["unsafe_text"]
    assert list(journal.replay()) == ["acme/poison", "acme/next"]


def test_billion_laughs_card_is_refused_in_bounded_time_and_memory() -> None:
    card = f"---\n{billion_laughs(9)}license: mit\n---\n# prose kept\n"
    assert len(card) < 600
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    fields, error = parse_card(card)
    assert time.monotonic() - start < 10  # expanded, it would not finish (or fit in memory) at all
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 50  # MiB
    assert fields == {"card_text": "# prose kept\n"}
    assert error is not None and error.startswith("oversized: README.md metadata expands to more than")


@pytest.mark.parametrize(
    ("yaml_text", "reason"),
    [
        ("a: &a [*a]", "alias that contains itself"),
        ("x: " + "[" * 200 + "]" * 200, "nests deeper than"),
        ("x: " + "y" * 2_000_000, "characters long"),
    ],
)
def test_card_metadata_over_a_limit_is_refused(yaml_text: str, reason: str) -> None:
    fields, error = parse_card(f"---\n{yaml_text}\n---\nprose\n")
    assert fields == {"card_text": "prose\n"}
    assert error is not None and error.startswith("oversized:") and reason in error


def test_aliases_within_the_limits_load_as_yaml_says() -> None:
    assert load_card_metadata("base: &b {lr: 0.1}\nrun: *b\n") == {"base": {"lr": 0.1}, "run": {"lr": 0.1}}


def test_malformed_and_odd_cards_are_one_error_each() -> None:
    assert parse_card("no front matter\n") == (
        {"card_text": "no front matter\n"},
        "no_card_metadata: README.md has no YAML metadata; add a '---' header with license and datasets",
    )
    fields, error = parse_card("---\nlicense: [mit\n---\nprose\n")
    assert fields == {"card_text": "prose\n"} and error is not None and error.startswith("malformed_card:")
    fields, error = parse_card("---\nignore_metadata_errors: true\nlicense: mit\n---\nprose\n")  # a client keyword
    assert error is not None and error.startswith("malformed_card:")
    fields, error = parse_card("---\n1: one\n2024-01-02: day\nlicense: mit\n---\nprose\n")  # keys YAML allows
    assert error is None and fields["license"] == "mit" and set(fields["extra"]) == {"1", "2024-01-02"}
    assert parse_card(b"\xff\xfe")[1].startswith("malformed_card: README.md is not UTF-8")  # type: ignore[union-attr]


def test_config_over_the_depth_cap_or_too_deep_for_json_is_not_read() -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(500):
        deep = {"x": deep}
    config = {"architectures": ["ViTModel"], "model_type": "vit", "nested": deep}
    expected = "oversized: config.json nests deeper than 32 levels; it was not read"
    assert config_fields(json.dumps(config)) == ({}, expected)
    fields, error = config_fields("[" * 100_000 + "]" * 100_000)  # past Python's recursion limit
    assert fields == {} and error is not None and error.startswith("oversized:")


def test_config_labels_that_are_not_strings_stay_in_place() -> None:
    fields, error = config_fields(json.dumps({"id2label": {"0": "cat", "1": 7, "2": {"x": 1}}}))
    assert error is None and fields["label_names"] == ("cat", "7", "<dict>")


def test_tables_and_collection_notes_show_hostile_strings_escaped() -> None:
    from hf_spider.outputs.collections import collection_note
    from hf_spider.outputs.shortlist import Shortlist

    shortlist = Shortlist.from_scores(
        {f"acme/cat{RLO}gpj.exe": 0.9, "acme/\x1b[2Jclear": 0.5},
        task=f"beans{RLO}",
        ranker="spider",
        reasons={"acme/\x1b[2Jclear": ["card says \x1b[31mred"]},
    )
    for text in (shortlist.to_table(), shortlist.to_markdown()):
        body = text.split("\n", 1)[1]  # the header line is the caller's own task name
        assert "\x1b" not in body and RLO not in body
        assert "acme/cat\\u202egpj.exe" in body and "card says \\u001b[31mred" in body
    note = collection_note(shortlist[0], shortlist, date="2026-01-31")
    assert RLO not in note and note.startswith("rank 1 · spider 0.9 · task beans\\u202e")
