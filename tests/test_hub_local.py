"""Folders of Hub-style model repos into records: header-only parameter counts, bad files, same result as the Hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_spider.cli import main
from hf_spider.errors import InvalidIndexError
from hf_spider.hub.index import read_index
from hf_spider.hub.local import parameters_from_safetensors_header, read_model_dir, records_from_dir
from hf_spider.ranking import load_candidates
from hf_spider.testing import LoopbackHub
from hf_spider.testing.repos import generate_repos, mismatches, safetensors_bytes


def _write_repo(folder: Path, files: dict[str, bytes | str]) -> None:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


def test_nested_and_flat_folders_give_repo_ids(tmp_path: Path) -> None:
    _write_repo(tmp_path / "acme" / "vit-tiny", {"config.json": json.dumps({"model_type": "vit"})})
    _write_repo(tmp_path / "flat-model", {"README.md": "---\nlicense: mit\n---\nhi\n"})
    records = records_from_dir(tmp_path)
    assert [r.repo_id for r in records] == ["acme/vit-tiny", "flat-model"]
    assert records[0].model_type == "vit" and records[1].license == "mit"
    assert [r.repo_id for r in load_candidates(tmp_path)] == ["acme/vit-tiny", "flat-model"]


def test_parameter_count_reads_the_header_only(tmp_path: Path) -> None:
    data = safetensors_bytes({"a": (3, 5), "b": (7,)})
    header_only = data[: 8 + int.from_bytes(data[:8], "little")]  # the weights are cut off: never read
    _write_repo(tmp_path / "m", {"model.safetensors": header_only, "config.json": "{}"})
    assert read_model_dir(tmp_path / "m", "o/m").num_parameters == 22
    with (tmp_path / "m" / "model.safetensors").open("rb") as f:
        assert parameters_from_safetensors_header(f) == {"F32": 22}


def test_bad_files_are_named_in_error_and_the_rest_is_kept(tmp_path: Path) -> None:
    _write_repo(
        tmp_path / "m",
        {"config.json": "[1, 2]", "README.md": "---\nlicense: [mit\n---\nprose\n", "model.safetensors": b"\x01"},
    )
    record = read_model_dir(tmp_path / "m", "o/m")
    assert record.card_text == "prose\n"
    assert record.error is not None
    assert [part.split(":")[0] for part in record.error.split(" | ")] == ["malformed_card", "bad_config", "bad_weights"]


def _safetensors_header(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header


@pytest.mark.parametrize(
    "header",
    [
        b'{"w": {"dtype": "F32", "shape": 5}}',  # TypeError: 'int' object is not iterable
        b'{"w": {"dtype": "F32", "shape": null}}',
        b'{"w": {"dtype": ["F32"], "shape": [2]}}',  # TypeError: unhashable type: 'list'
        b'{"w": {"dtype": "F32", "shape": [1e999]}}',  # OverflowError: cannot convert float infinity to integer
        b'{"w": {"dtype": "F32", "shape": [-1000, 3]}}',  # a negative parameter count, refused by every later read
        b'{"w": {"dtype": "F32", "shape": [2.5]}}',
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError
    ],
    ids=["shape int", "shape null", "dtype list", "shape 1e999", "negative shape", "fractional shape", "deep"],
)
def test_a_hostile_safetensors_header_is_bad_weights_not_a_traceback(tmp_path: Path, capsys, header: bytes) -> None:
    _write_repo(
        tmp_path / "repos" / "evil" / "m", {"model.safetensors": _safetensors_header(header), "config.json": "{}"}
    )
    record = read_model_dir(tmp_path / "repos" / "evil" / "m", "evil/m")
    assert record.num_parameters is None and record.error is not None
    assert record.error.startswith("bad_weights: model.safetensors has no readable safetensors header")
    index = tmp_path / "index.jsonl"
    assert main(["crawl", "--index", str(index), "--from-dir", str(tmp_path / "repos")]) == 0
    assert [r.error for r in read_index(index)] == [record.error]


def test_crawl_from_dir_writes_the_format_an_upper_case_suffix_names(tmp_path: Path, capsys) -> None:
    _write_repo(tmp_path / "repos" / "acme" / "a", {"config.json": json.dumps({"model_type": "vit"})})
    index = tmp_path / "OUT.PARQUET"
    assert main(["crawl", "--index", str(index), "--from-dir", str(tmp_path / "repos")]) == 0
    assert index.read_bytes()[:4] == b"PAR1"  # was JSON Lines under a Parquet name
    capsys.readouterr()
    assert main(["index", "stats", str(index), "--json"]) == 0  # and a real Parquet X.PARQUET was refused
    assert json.loads(capsys.readouterr().out)["total"] == 1


def test_crawl_from_dir_merges_a_left_journal_into_the_index_and_removes_it(tmp_path: Path, capsys) -> None:
    """A Hub crawl cut off leaves its journal; a folder crawl into the same index takes its records and, as a Hub
    crawl does once its index is written, removes it (it was left, to be replayed over a newer index)."""
    _write_repo(tmp_path / "repos" / "acme" / "a", {"config.json": json.dumps({"model_type": "vit"})})
    index = tmp_path / "index.jsonl"
    journal = tmp_path / "index.jsonl.journal.jsonl"
    journal.write_text(json.dumps({"repo_id": "hub/left-by-a-cut-crawl", "sha": "1"}) + "\n", encoding="utf-8")
    assert main(["crawl", "--index", str(index), "--from-dir", str(tmp_path / "repos")]) == 0
    assert sorted(r.repo_id for r in read_index(index)) == ["acme/a", "hub/left-by-a-cut-crawl"]
    assert not journal.exists()


def test_folder_without_repos_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidIndexError, match="holds no model repo"):
        records_from_dir(tmp_path)
    with pytest.raises(InvalidIndexError, match="is not a folder"):
        records_from_dir(tmp_path / "missing")


def test_folder_and_hub_give_the_same_content_fields(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 4, bad=False)
    for g in repos:
        files = loopback_hub.repos[g.repo_id].head.files
        _write_repo(tmp_path / "repos" / g.repo_id, dict(files))
    expected = {g.repo_id: g.expected(with_config=True, with_card=True) for g in repos}
    for record in records_from_dir(tmp_path / "repos"):
        wrong = mismatches(expected[record.repo_id], record)
        # a folder has no Hub metadata (sha, downloads, tags, pipeline tag set on the Hub) and nothing else differs
        hub_only = ("sha", "downloads", "likes", "tags", "gated", "pipeline_tag", "library_name")
        assert [w for w in wrong if not any(f".{name}:" in w for name in hub_only)] == []


def test_cli_crawl_from_dir_and_index_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_repo(
        tmp_path / "repos" / "acme" / "a",
        {"config.json": "{bad", "README.md": "---\npipeline_tag: image-classification\n---\n"},
    )
    _write_repo(tmp_path / "repos" / "acme" / "b", {"README.md": "no metadata\n"})
    index = tmp_path / "index.jsonl"
    assert main(["crawl", "--index", str(index), "--from-dir", str(tmp_path / "repos")]) == 0
    assert [r.repo_id for r in read_index(index)] == ["acme/a", "acme/b"]
    capsys.readouterr()
    assert main(["index", "stats", str(index), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"] == 2 and stats["errors"] == {"bad_config": 1, "no_card_metadata": 1}
    assert stats["pipeline_tags"] == {"image-classification": 1, "(none)": 1}
    assert stats["missing_fields"]["architectures"] == 2
    assert main(["index", "stats", str(index)]) == 0
    table = capsys.readouterr().out
    assert "bad_config" in table and "2 models, 2 with an error" in table
    assert main(["index", "stats", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
