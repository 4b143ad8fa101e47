"""ModelRecord: JSON and Parquet round-trips, unknown keys, and index files with broken rows."""

from __future__ import annotations

import json

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
