"""ModelRecord: JSON and Parquet round-trips, unknown keys, and index files with broken rows."""

from __future__ import annotations

import json
import re

import pytest

from hf_spider.errors import InvalidIndexError
from hf_spider.hub.index import load_bundled_index, read_index, write_index
from hf_spider.hub.records import SCHEMA_VERSION, EvalResult, ModelRecord


def full_record() -> ModelRecord:
    return ModelRecord(
        repo_id="org/vit-tiny",
        sha="a" * 40,
        pipeline_tag="image-classification",
        library_name="transformers",
        architectures=("ViTForImageClassification",),
        model_type="vit",
        num_parameters=5_700_000,
        input_size=224,
        label_names=("cat", "dog"),
        datasets=("imagenet-1k",),
        base_models=("org/vit-base",),
        eval_results=(EvalResult(dataset="imagenet-1k", metric="accuracy", value=0.71, task="image-classification"),),
        license="apache-2.0",
        languages=("en",),
        gated=False,
        downloads=12,
        likes=3,
        created_at="2024-01-01T00:00:00+00:00",
        last_modified="2024-02-01T00:00:00+00:00",
        card_text="# A tiny ViT\n",
        tags=("vision",),
        extra={"widget": [{"src": "x.png"}]},
    )


def test_json_round_trip_keeps_every_field() -> None:
    record = full_record()
    data = json.loads(json.dumps(record.to_dict()))
    assert data["schema_version"] == SCHEMA_VERSION
    assert ModelRecord.from_dict(data) == record


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_index_file_round_trip(tmp_path, suffix) -> None:
    records = [full_record(), ModelRecord(repo_id="org/bare")]
    path = write_index(records, tmp_path / f"index{suffix}")
    assert read_index(path) == records
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"


def test_missing_fields_stay_none() -> None:
    record = ModelRecord.from_dict({"repo_id": "org/x"})
    assert record.num_parameters is None and record.downloads is None and record.label_names is None


def test_unknown_keys_go_to_extra() -> None:
    record = ModelRecord.from_dict({"repo_id": "org/x", "pipeline_tag": "text-classification", "co2": 1.5})
    assert record.extra == {"co2": 1.5}
    assert record.modality == "text"


def test_newer_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="newer"):
        ModelRecord.from_dict({"repo_id": "org/x", "schema_version": SCHEMA_VERSION + 1})


def test_broken_jsonl_row_names_the_line(tmp_path) -> None:
    path = tmp_path / "index.jsonl"
    path.write_text(json.dumps({"repo_id": "org/a"}) + "\n{not json\n")
    with pytest.raises(InvalidIndexError, match="line 2"):
        read_index(path)


def test_row_without_repo_id_is_refused(tmp_path) -> None:
    path = tmp_path / "index.jsonl"
    path.write_text(json.dumps({"repo_id": "org/a"}) + "\n" + json.dumps({"model_type": "vit"}) + "\n")
    with pytest.raises(InvalidIndexError, match=r"row 2 .*repo_id"):
        read_index(path)


def test_bundled_index_holds_the_transfergraph_models() -> None:
    records = load_bundled_index()
    by_modality = {m: sum(r.modality == m for r in records) for m in ("image", "text")}
    assert by_modality == {"image": 185, "text": 164}
    assert len({r.repo_id for r in records}) == len(records)
    vit = next(r for r in records if r.repo_id == "google/vit-base-patch16-224")
    assert vit.model_type == "vit" and vit.num_parameters and len(vit.label_names or ()) == 1000


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"repo_id": "org/a", "downloads": Infinity}', "row 1 is not a valid model record ('downloads' is inf"),
        ('{"repo_id": "org/a", "num_parameters": 1e400}', "'num_parameters' is inf, not a whole number"),
        ('{"repo_id": "org/a", "schema_version": Infinity}', "'schema_version' is inf, not a whole number"),
        ('{"repo_id": "org/a", "tags": "vision"}', "'tags' must be a list, got str"),
        ('{"repo_id": "org/a", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 1 nests too deeply"),
        # Python's json reads these, and the float fields kept them (log10 of a negative gmacs raised in the tokens).
        ('{"repo_id": "org/a", "gmacs": Infinity}', "row 1 is not a valid model record ('gmacs' is inf, not a finite"),
        ('{"repo_id": "org/a", "imagenet_top1": NaN}', "'imagenet_top1' is nan, not a finite number"),
        ('{"repo_id": "org/a", "imagenet_top1": 1e309}', "'imagenet_top1' is inf, not a finite number"),
        ('{"repo_id": "org/a", "gmacs": -4.1}', "'gmacs' is -4.1; a measure is never negative"),
        ('{"repo_id": "org/a", "gmacs": 1' + "0" * 400 + "}", "'gmacs' is 1000000000000000000000000000000000000000,"),
        (
            '{"repo_id": "org/a", "eval_results": [{"dataset": "d", "metric": "accuracy", "value": -Infinity}]}',
            "a value in 'eval_results' is -inf, not a finite number",
        ),
        (  # the PTM token compared it with 0 and 1: a TypeError long after the read
            '{"repo_id": "org/a", "eval_results": [{"dataset": "d", "metric": "accuracy", "value": "high"}]}',
            "'eval_results' holds a value that is str, not a number",
        ),
        (
            '{"repo_id": "org/a", "eval_results": [{"dataset": "d", "metric": ["accuracy"], "value": 0.5}]}',
            "'eval_results' holds a metric that is list, not a string",
        ),
    ],
)
def test_a_row_no_record_can_hold_is_refused_naming_the_row(tmp_path, line, message) -> None:
    path = tmp_path / "index.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(InvalidIndexError, match=re.escape(message)):
        read_index(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"repo_id": "org/a", "num_parameters": float("inf")}, "row 1 is not a valid model record ('num_parameters'"),
        ({"repo_id": "org/a", "tags": "notalist"}, "'tags' must be a list, got str"),  # not ('n', 'o', 't', ...)
        ({"repo_id": "org/a", "gmacs": float("inf")}, "row 1 is not a valid model record ('gmacs' is inf"),
        ({"repo_id": "org/a", "imagenet_top1": -float("inf")}, "'imagenet_top1' is -inf, not a finite number"),
        ({"repo_id": "org/a", "extra": "[" * 100_000 + "]" * 100_000}, "row 1 nests too deeply"),
    ],
)
def test_a_parquet_row_no_record_can_hold_is_refused_naming_the_row(tmp_path, row, message) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "index.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    with pytest.raises(InvalidIndexError, match=re.escape(message)):
        read_index(path)


@pytest.mark.parametrize(("name", "magic"), [("INDEX.PARQUET", b"PAR1"), ("Index.Parquet", b"PAR1"), ("I.JSONL", b"{")])
def test_the_suffix_names_the_format_in_any_case(tmp_path, name, magic) -> None:
    records = [full_record()]
    path = write_index(records, tmp_path / name)
    assert path.read_bytes().startswith(magic)  # OUT.PARQUET used to be written as JSON Lines
    assert read_index(path) == records  # and a real Parquet X.PARQUET was read as JSON Lines and refused


def test_an_index_of_another_suffix_names_the_accepted_ones(tmp_path) -> None:
    path = tmp_path / "real.csv"
    path.write_text("repo_id,downloads\norg/a,5\n")
    with pytest.raises(InvalidIndexError, match=r"'.*real\.csv' is neither \.jsonl nor \.parquet"):
        read_index(path)  # was: "line 1 is not valid JSON"
    with pytest.raises(InvalidIndexError, match=r"is neither \.jsonl nor \.parquet"):
        write_index([full_record()], tmp_path / "out.csv")  # was: JSON Lines under a .csv name
    assert not (tmp_path / "out.csv").exists()
    (tmp_path / "old.json").write_text(json.dumps({"repo_id": "org/a"}) + "\n")
    assert [r.repo_id for r in read_index(tmp_path / "old.json")] == ["org/a"]  # JSON Lines named .json: still read
