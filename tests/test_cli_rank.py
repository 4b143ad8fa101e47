"""`hf-spider rank`: happy paths on small local datasets and one clear line (exit 2) for each bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hf_spider.cli import main
from hf_spider.errors import InvalidDatasetError
from hf_spider.hub.dedup import collapse_copies
from hf_spider.hub.pool import load_default_pool


def default_pool():
    """The default pool as `rank` ranks it: one entry per checkpoint."""
    return collapse_copies(load_default_pool())


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "bird"):
        (root / label).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "reviews.csv"
    pd.DataFrame({"text": [f"review {i}" for i in range(30)], "label": ["pos", "neg", "neutral"] * 10}).to_csv(
        path, index=False
    )
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["rank", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ranks_every_image_model_for_an_image_folder(capsys, image_folder) -> None:
    code, out, _ = run(capsys, "--dataset", str(image_folder), "--top-k", "0", "--format", "json")
    assert code == 0
    shortlist = json.loads(out)
    image_models = {r.repo_id for r in default_pool() if r.modality == "image"}
    assert {e["model_id"] for e in shortlist["entries"]} == image_models
    scores = [e["score"] for e in shortlist["entries"]]
    assert scores == sorted(scores, reverse=True)


def test_ranks_text_models_for_a_csv_and_writes_the_file(capsys, text_csv, tmp_path) -> None:
    out_file = tmp_path / "shortlist.md"
    code, _, _ = run(
        capsys, "--dataset", str(text_csv), "--top-k", "3", "--format", "markdown", "--output", str(out_file)
    )
    assert code == 0
    lines = [line for line in out_file.read_text().splitlines() if line.startswith("| ")]
    text_models = {r.repo_id for r in default_pool() if r.modality == "text"}
    assert len(lines) == 1 + 3 and lines[1].split(" | ")[1] in text_models


def test_ranks_from_label_names_alone(capsys) -> None:
    code, out, _ = run(capsys, "--labels", "cat,dog", "--modality", "image", "--top-k", "2", "--format", "json")
    assert code == 0 and len(json.loads(out)["entries"]) == 2


def test_named_candidates_only(capsys, text_csv) -> None:
    ids = "roberta-base,distilbert-base-uncased"
    code, out, _ = run(capsys, "--dataset", str(text_csv), "--models", ids, "--format", "json")
    assert code == 0
    assert {e["model_id"] for e in json.loads(out)["entries"]} == set(ids.split(","))


def write_broken_index(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"repo_id": "org/a", "pipeline_tag": "text-classification"}\n{"oops": 1}\n')
    return path


def no_label_csv(tmp_path):
    path = tmp_path / "nolabel.csv"
    pd.DataFrame({"text": ["a", "b"], "score": [1, 2]}).to_csv(path, index=False)
    return path


def one_class_csv(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}).to_csv(path, index=False)
    return path


def header_only_csv(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    return path


def empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def latin1_csv(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 cr\xe8me,pos\nna\xefve,neg\n".encode("latin-1"))
    return path


def one_class_image_folder(tmp_path):
    root = tmp_path / "cats"
    (root / "cat").mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(root / "cat" / f"{i}.png")
    return root


def unknown_layout(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing to see")
    return folder


BAD_INPUTS = {
    "missing path": (lambda tmp: ["--dataset", str(tmp / "nope")], "does not exist"),
    "unknown layout": (lambda tmp: ["--dataset", str(unknown_layout(tmp))], "unknown dataset layout"),
    "no label column": (lambda tmp: ["--dataset", str(no_label_csv(tmp))], "no label column"),
    "single class": (lambda tmp: ["--dataset", str(one_class_csv(tmp))], "single class"),
    "single class image folder": (lambda tmp: ["--dataset", str(one_class_image_folder(tmp))], "single class"),
    "empty file": (lambda tmp: ["--dataset", str(empty_csv(tmp))], "empty.csv' is empty"),
    "header only": (lambda tmp: ["--dataset", str(header_only_csv(tmp))], "has a header but no rows"),
    "latin-1 file": (lambda tmp: ["--dataset", str(latin1_csv(tmp))], "is not UTF-8 (byte 0xe9 at offset 14)"),
    "format against suffix": (
        lambda tmp: ["--labels", "a,b", "--modality", "text", "--format", "markdown"],
        "names a json file but --format is markdown",
    ),
    "broken index row": (
        lambda tmp: ["--labels", "a,b", "--modality", "text", "--candidates", str(write_broken_index(tmp))],
        "row 2",
    ),
    "unknown candidate": (
        lambda tmp: ["--labels", "a,b", "--modality", "text", "--models", "roberta-base,org/missing"],
        "org/missing",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_exit_2(capsys, tmp_path, case) -> None:
    build_args, message = BAD_INPUTS[case]
    out_file = tmp_path / "out.json"
    code, out, err = run(capsys, *build_args(tmp_path), "--output", str(out_file))
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("hf-spider rank: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], err
    assert "Traceback" not in err and "ERROR" not in err and out == ""  # no datasets log above our line
    assert not out_file.exists()


def test_corrupt_images_are_left_out_with_a_counted_warning(capsys, caplog, tmp_path, image_folder) -> None:
    import shutil

    folder = tmp_path / "pets"
    shutil.copytree(image_folder, folder)
    (folder / "cat" / "broken.png").write_bytes(b"not an image")
    (folder / "dog" / "cut.png").write_bytes((folder / "dog" / "0.png").read_bytes()[:60])
    code, out, _ = run(capsys, "--dataset", str(folder), "--top-k", "2", "--format", "json")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("skipped 2 unreadable image(s) of 14") for m in warnings), warnings
    notes = json.loads(out)["metadata"]["notes"]
    assert any(n.startswith("2 unreadable input file(s)") for n in notes)


def test_output_suffix_picks_the_format(capsys, tmp_path) -> None:
    for name, check in (("all.json", json.loads), ("all.md", lambda t: t.index("| rank |")), ("all.txt", str)):
        code, _, _ = run(
            capsys, "--labels", "cat,dog", "--modality", "image", "--top-k", "2", "--output", str(tmp_path / name)
        )
        assert code == 0
        check((tmp_path / name).read_text())
    header = (tmp_path / "all.txt").read_text().splitlines()[1].split()
    assert header[:2] == ["rank", "model"] and header[2] in ("percentile", "score")


def test_verbose_works_after_the_subcommand(capsys, tmp_path) -> None:
    with pytest.raises(InvalidDatasetError):  # --verbose: the traceback instead of the one line
        main(["rank", "--dataset", str(tmp_path / "nope"), "-v"])
    assert main(["rank", "--dataset", str(tmp_path / "nope")]) == 2


def test_license_filter_keeps_unrecorded_licenses_and_notes_them(capsys) -> None:
    licenses = {r.repo_id: r.license for r in default_pool()}
    argv = ["--labels", "cat,dog", "--modality", "image", "--license", "apache-2.0", "--top-k", "0", "--format", "json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    entries = json.loads(out)["entries"]
    assert {licenses[e["model_id"]] for e in entries} == {"apache-2.0", None}
    assert all(("license unknown" in e["reasons"]) == (licenses[e["model_id"]] is None) for e in entries)
    code, out, _ = run(capsys, *argv, "--drop-unknown")
    assert code == 0 and {licenses[e["model_id"]] for e in json.loads(out)["entries"]} == {"apache-2.0"}


def test_max_params_notes_models_of_unknown_size(capsys, tmp_path) -> None:
    from hf_spider.hub.index import write_index
    from hf_spider.hub.records import ModelRecord

    index = write_index(
        [
            ModelRecord(repo_id="o/sized", pipeline_tag="image-classification", num_parameters=500),
            ModelRecord(repo_id="o/large", pipeline_tag="image-classification", num_parameters=5000),
            ModelRecord(repo_id="o/unsized", pipeline_tag="image-classification"),
        ],
        tmp_path / "index.jsonl",
    )
    argv = ["--labels", "cat,dog", "--modality", "image", "--candidates", str(index), "--ranker", "size_prior"]
    code, out, _ = run(capsys, *argv, "--max-params", "1e3", "--format", "json")
    reasons = {e["model_id"]: e["reasons"] for e in json.loads(out)["entries"]}
    assert code == 0 and reasons == {"o/sized": [], "o/unsized": ["size unknown"]}
    code, out, _ = run(capsys, *argv, "--max-params", "1e3", "--drop-unknown", "--format", "json")
    assert [e["model_id"] for e in json.loads(out)["entries"]] == ["o/sized"]


def test_test_repos_are_noted_or_dropped(capsys, tmp_path) -> None:
    from hf_spider.hub.index import write_index
    from hf_spider.hub.records import ModelRecord

    index = write_index(
        [
            ModelRecord(repo_id="o/vit", pipeline_tag="image-classification", num_parameters=500),
            ModelRecord(repo_id="o/tiny-vit-random", pipeline_tag="image-classification", num_parameters=50),
        ],
        tmp_path / "index.jsonl",
    )
    argv = ["--labels", "cat,dog", "--modality", "image", "--candidates", str(index), "--ranker", "size_prior"]
    code, out, _ = run(capsys, *argv, "--format", "json")
    reasons = {e["model_id"]: e["reasons"] for e in json.loads(out)["entries"]}
    assert code == 0 and reasons == {"o/vit": [], "o/tiny-vit-random": ["looks like a test or random-weight repo"]}
    code, out, _ = run(capsys, *argv, "--drop-test-repos", "--format", "json")
    assert [e["model_id"] for e in json.loads(out)["entries"]] == ["o/vit"]


def test_bundled_shortlist_says_it_is_not_pinned(capsys) -> None:
    code, out, _ = run(capsys, "--labels", "cat,dog", "--modality", "image", "--top-k", "3")
    assert code == 0 and "none of the candidates record a revision: a model fetched from the Hub comes at its" in out


def test_console_script_runs_offline(text_csv) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "hf_spider", "rank", "--dataset", str(text_csv), "--top-k", "1", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["entries"]) == 1


def test_ranker_option_picks_the_ranker(capsys) -> None:
    code, out, _ = run(
        capsys, "--labels", "a,b", "--modality", "text", "--ranker", "size_prior", "--top-k", "1", "--format", "json"
    )
    assert code == 0
    shortlist = json.loads(out)
    largest = max((r for r in default_pool() if r.modality == "text"), key=lambda r: r.num_parameters or 0)
    assert shortlist["ranker"] == "size_prior" and shortlist["entries"][0]["model_id"] == largest.repo_id


def test_trainable_rankers_are_fitted_on_the_bundled_records(capsys) -> None:
    code, out, _ = run(capsys, "--labels", "cat,dog", "--modality", "image", "--ranker", "fennec", "--format", "json")
    assert code == 0
    entries = json.loads(out)["entries"]
    assert json.loads(out)["ranker"] == "fennec" and len({e["score"] for e in entries}) > 1


def test_a_crawled_index_pins_every_candidate_and_the_shortlist_carries_the_revision(
    capsys, loopback_hub, tmp_path
) -> None:
    from hf_spider.hub.crawl import Selection, crawl
    from hf_spider.hub.index import read_index
    from hf_spider.testing.repos import generate_repos

    generate_repos(loopback_hub, 12)
    index = tmp_path / "index.jsonl"
    crawl(index, Selection(sort=None), endpoint=loopback_hub.endpoint, workers=2, timeout=5.0)
    shas = {r.repo_id: r.sha for r in read_index(index) if r.modality in ("text", None) and not r.gated}
    assert shas and all(shas.values())
    argv = ["--labels", "a,b", "--modality", "text", "--candidates", str(index), "--ranker", "size_prior"]
    code, out, _ = run(capsys, *argv, "--top-k", "0", "--format", "json")
    shortlist = json.loads(out)
    assert code == 0 and {e["model_id"]: e["sha"] for e in shortlist["entries"]} == shas
    assert not any("record a revision" in note for note in shortlist["metadata"].get("notes", []))


def test_train_scorer_never_writes_into_the_package(capsys) -> None:
    from hf_spider.scorer.ranker import default_scorer_path

    before = {p.name: p.stat().st_mtime_ns for p in default_scorer_path().iterdir()}
    assert main(["train-scorer", "--output", str(default_scorer_path())]) == 2
    err = capsys.readouterr().err
    assert "inside the installed hf_spider package" in err and "scripts/train_default_scorer.py" in err
    assert {p.name: p.stat().st_mtime_ns for p in default_scorer_path().iterdir()} == before
