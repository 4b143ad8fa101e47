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
from hf_spider.hub.index import load_bundled_index


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
    image_models = {r.repo_id for r in load_bundled_index() if r.modality == "image"}
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
    text_models = {r.repo_id for r in load_bundled_index() if r.modality == "text"}
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


def empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("text,label\n")
    return path


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
    "empty split": (lambda tmp: ["--dataset", str(empty_csv(tmp))], "empty"),
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
    assert "Traceback" not in err and out == ""
    assert not out_file.exists()


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
    largest = max((r for r in load_bundled_index() if r.modality == "text"), key=lambda r: r.num_parameters or 0)
    assert shortlist["ranker"] == "size_prior" and shortlist["entries"][0]["model_id"] == largest.repo_id


def test_trainable_rankers_are_fitted_on_the_bundled_records(capsys) -> None:
    code, out, _ = run(capsys, "--labels", "cat,dog", "--modality", "image", "--ranker", "fennec", "--format", "json")
    assert code == 0
    entries = json.loads(out)["entries"]
    assert json.loads(out)["ranker"] == "fennec" and len({e["score"] for e in entries}) > 1
