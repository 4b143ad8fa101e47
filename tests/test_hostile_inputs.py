"""Hostile and malformed inputs: each gives one line naming the fix and exit code 2, or is handled with a note.

Never a traceback, a silent change to the data, or a clobbered file. The cases are the ones a new user tried
(issue #28) plus those handled before (one-class folders, corrupted images, decompression bombs, encodings, empty
files, a bad ``--top-k``); a ``hypothesis`` suite feeds random bytes and random arguments to the same entry points.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hf_spider.cli import main
from hf_spider.errors import InvalidDatasetError, InvalidOutputError, InvalidShortlistError
from hf_spider.hub.output_paths import atomic_write, check_output_dir, check_output_file
from hf_spider.outputs.shortlist import Shortlist
from hf_spider.tokens.sources import load_task_source

ROOT = Path(__file__).resolve().parents[1]
RANK_LABELS = ["rank", "--labels", "cat,dog", "--modality", "image"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in-process; a usage error's ``SystemExit`` is its exit code."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    """stderr without progress bars and log lines: what a user reads as the error."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    return [line for line in lines if ": error: " in line or "Traceback" in line or line.startswith("  File ")]


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    lines = error_lines(err)
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and expected in lines[0], lines


def snapshot(path: Path) -> tuple:
    """What "untouched" means for any kind of file: its type, inode, size, mtime and, for a link, its target."""
    info = path.lstat()
    link = os.readlink(path) if path.is_symlink() else None
    return (stat.S_IFMT(info.st_mode), info.st_ino, info.st_size, info.st_mtime_ns, link)


# ------------------------------------------------------------------------------------------------------ output paths


def _device(tmp: Path) -> Path:
    path = tmp / "full"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # the /dev/full device, in a temporary folder
    except (PermissionError, OSError) as exc:
        pytest.skip(f"mknod is not permitted here ({exc})")
    return path


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo")
    return tmp / "fifo"


def _symlink(tmp: Path) -> Path:
    (tmp / "real.json").write_text("keep me\n")
    (tmp / "link.json").symlink_to(tmp / "real.json")
    return tmp / "link.json"


def _stdout_link(tmp: Path) -> Path:
    (tmp / "stdout").symlink_to("/proc/self/fd/1")  # the `--output /dev/stdout` habit
    return tmp / "stdout"


def _folder(tmp: Path) -> Path:
    (tmp / "existing").mkdir()
    return tmp / "existing"


def _self_link(tmp: Path) -> Path:
    (tmp / "loop.json").symlink_to("loop.json")
    return tmp / "loop.json"


REFUSED_OUTPUTS = {
    "device node": (_device, "is a character device, not a regular file"),
    "fifo": (_fifo, "is a FIFO (named pipe)"),
    "symlink to a file": (_symlink, "is a symbolic link"),
    "symlink to stdout": (_stdout_link, "is a symbolic link"),
    "self symlink": (_self_link, "is a symbolic link"),
    "directory": (_folder, "is a folder; pass a file path"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_OUTPUTS))
def test_rank_output_that_is_not_a_regular_file_exits_2_and_is_left_untouched(capsys, tmp_path, case) -> None:
    make, message = REFUSED_OUTPUTS[case]
    target = make(tmp_path)
    before = snapshot(target)
    code, out, err = run_cli(capsys, *RANK_LABELS, "--output", str(target))
    assert_one_line_error(code, err, message)
    assert snapshot(target) == before and out == ""
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output", ""], "argument --output: an empty path"),
        (["--output", "{file}/out.json"], "which is a file, not a folder"),
    ],
)
def test_rank_output_that_cannot_be_a_file_path_exits_2(capsys, tmp_path, argv, message) -> None:
    (tmp_path / "file.csv").write_text("a,b\n")
    argv = [a.replace("{file}", str(tmp_path / "file.csv")) for a in argv]
    code, _, err = run_cli(capsys, *RANK_LABELS, *argv)
    assert_one_line_error(code, err, message)
    assert (tmp_path / "file.csv").read_text() == "a,b\n"


def test_follow_symlinks_writes_through_the_link_and_keeps_it(tmp_path) -> None:
    link = _symlink(tmp_path)
    with atomic_write(link, follow_symlinks=True) as f:
        f.write("new\n")
    assert link.is_symlink() and (tmp_path / "real.json").read_text() == "new\n"


def test_atomic_write_looks_again_before_the_rename(tmp_path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(InvalidOutputError, match="FIFO"), atomic_write(target) as f:
        f.write("x")
        os.mkfifo(target)  # swapped in while the result was being written
    assert stat.S_ISFIFO(target.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # the temporary file is gone


def test_write_error_is_one_error_naming_the_file(tmp_path, monkeypatch) -> None:
    import errno

    from hf_spider.errors import OutputWriteError

    target = tmp_path / "out.json"
    target.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputWriteError, match=r"could not write .*out.json.*No space left"), atomic_write(target) as f:
        f.write("new\n")
    assert target.read_text() == "old\n"


def test_dash_is_stdout(capsys) -> None:
    code, out, _ = run_cli(capsys, *RANK_LABELS, "--output", "-", "--format", "json", "--top-k", "1")
    assert code == 0 and json.loads(out)["entries"][0]["rank"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--records", "example", "--output-dir", "{file}"], "exists and is not a folder"),
        (["evaluate", "--records", "example", "--output-dir", "{dir}/link"], "is a symbolic link"),
        (["crawl", "--index", "{dir}", "--models", "a/b"], "is a folder; pass a file path"),
        (["crawl", "--index", "{file}/index.jsonl", "--models", "a/b"], "which is a file, not a folder"),
        (["train-scorer", "--output", "{file}"], "exists and is not a folder"),
        (["build-records", "--output", "{file}", "--dataset", "x"], "exists and is not a folder"),
        (["rerank", "--dataset", "x", "--output", "{dir}"], "is a folder; pass a file path"),
        (["rank", "--dataset", "{file}", "--output", "{file}"], "is the --dataset input; write the shortlist to"),
        (["rerank", "--dataset", "x", "--shortlist", "{file}", "--output", "{file}"], "is the --shortlist input"),
    ],
)
def test_every_command_that_writes_checks_its_output_before_the_work(capsys, tmp_path, argv, message) -> None:
    file, folder = tmp_path / "some_file", tmp_path / "out"
    file.write_text("keep\n")
    folder.mkdir()
    (folder / "link").symlink_to(file)
    (folder / "evaluation.json").symlink_to(file)
    if "link" in " ".join(argv):
        argv = [a.replace("{dir}/link", "{dir}") for a in argv]
    argv = [a.replace("{file}", str(file)).replace("{dir}", str(folder)) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, message)
    assert file.read_text() == "keep\n"


def test_output_checks_name_the_flag(tmp_path) -> None:
    with pytest.raises(InvalidOutputError, match=r"^--index .*is a folder"):
        check_output_file(tmp_path, what="--index")
    with pytest.raises(InvalidOutputError, match="'-' \\(stdout\\)"):
        check_output_file("-")
    check_output_dir(tmp_path / "new" / "deeper")  # a new folder under a writable one is fine
    check_output_file(tmp_path / "new" / "file.json")


def _index_stats(stdout) -> subprocess.CompletedProcess:
    bundled = ROOT / "hf_spider" / "data" / "bundled_index.jsonl"
    command = [sys.executable, "-m", "hf_spider", "index", "stats", str(bundled), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, timeout=120)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_stdout_on_a_full_disk_is_one_line_and_exit_2() -> None:
    with open("/dev/full", "w") as full:
        done = _index_stats(full)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "hf-spider index: error: no space left on the device the output goes to; free some space or write elsewhere"
    ]


def test_a_closed_pipe_ends_the_command_silently() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader (`| head`) is gone before the first line is written
    with os.fdopen(write, "w") as pipe:
        done = _index_stats(pipe)
    assert done.returncode == 141 and done.stderr == "", done.stderr


def test_ctrl_c_while_the_command_line_imports_exits_130_without_a_traceback() -> None:
    code = (
        "import runpy, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hf_spider.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "runpy.run_module('hf_spider', run_name='__main__')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 130 and done.stderr == "hf-spider: interrupted\n", done.stderr


def test_ctrl_c_while_commands_are_imported_exits_130(capsys, monkeypatch) -> None:
    import importlib

    def interrupted(name: str, package: str | None = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib, "import_module", interrupted)
    code, _, err = run_cli(capsys, *RANK_LABELS)
    assert code == 130 and err == "hf-spider: interrupted\n"


def test_a_real_ctrl_c_as_the_command_starts_exits_130_without_a_traceback() -> None:
    """A real SIGINT, sent while ``python -m hf_spider`` imports its command line.

    An import hook says "ready" when ``hf_spider.cli`` is about to be imported and then waits, so the signal lands
    inside that import however fast or loaded the machine is (a fixed delay raced the command, which now finishes in
    under a second).
    """
    code = (
        "import runpy, sys, time\n"
        "class Ready:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hf_spider.cli':\n"
        "            print('ready', flush=True)\n"
        "            time.sleep(30)\n"
        "sys.meta_path.insert(0, Ready())\n"
        f"sys.argv = ['hf-spider', *{RANK_LABELS!r}]\n"
        "runpy.run_module('hf_spider', run_name='__main__')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.rstrip().endswith("interrupted"), err


# ------------------------------------------------------------------------------------------- repos that cannot be read


VIT_CONFIG = {
    "architectures": ["ViTForImageClassification"],
    "model_type": "vit",
    "image_size": 224,
    "id2label": {"0": "cat", "1": "dog"},
}


def _broken_repo(root: Path, kind: str) -> None:
    """One of the six unreadable configs the issue lists (the 50 MB one is 9 MB: over the 8 MiB read cap)."""
    folder = root / kind
    folder.mkdir()
    config = folder / "config.json"
    if kind == "truncated":
        config.write_text(json.dumps(VIT_CONFIG)[:30])
    elif kind == "json_list":
        config.write_text("[1, 2, 3]")
    elif kind == "binary":
        config.write_bytes(bytes(range(256)) * 4)
    elif kind == "deep":
        config.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "self_symlink":
        config.symlink_to("config.json")
        (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    elif kind == "huge":
        config.write_text('{"pad": "' + "x" * (9 * 2**20) + '"}')


UNREADABLE = ("truncated", "json_list", "binary", "deep", "self_symlink", "huge")


@pytest.fixture(scope="module")
def hostile_pool(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pool")
    (root / "vit-good").mkdir()
    (root / "vit-good" / "config.json").write_text(json.dumps(VIT_CONFIG))
    for kind in UNREADABLE:
        _broken_repo(root, kind)
    return root


def _rank_pool(capsys, pool: Path, *extra: str) -> dict:
    code, out, err = run_cli(
        capsys, *RANK_LABELS, "--candidates", str(pool), "--format", "json", "--top-k", "0", *extra
    )
    assert code == 0, err
    return json.loads(out)


def test_unreadable_configs_rank_below_every_read_model_with_their_reason(capsys, hostile_pool) -> None:
    shortlist = _rank_pool(capsys, hostile_pool)
    order = [e["model_id"] for e in shortlist["entries"]]
    errors = {e["model_id"]: e["error"] for e in shortlist["entries"]}
    assert order[0] == "vit-good" and errors["vit-good"] is None
    assert sorted(order[1:]) == sorted(UNREADABLE)
    for kind in UNREADABLE:
        assert errors[kind] and errors[kind].split(":")[0] in ("bad_config", "oversized"), (kind, errors[kind])
        assert "config.json" in errors[kind]
    assert set(shortlist["metadata"]["unread"]) == set(UNREADABLE)
    assert any("6 candidate(s) could not be read" in n for n in shortlist["metadata"]["notes"])


def test_unreadable_configs_stay_listed_when_top_k_cuts_them(capsys, hostile_pool) -> None:
    code, out, _ = run_cli(capsys, *RANK_LABELS, "--candidates", str(hostile_pool), "--format", "json", "--top-k", "1")
    shortlist = json.loads(out)
    assert code == 0 and [e["model_id"] for e in shortlist["entries"]] == ["vit-good"]
    assert set(shortlist["metadata"]["unread"]) == set(UNREADABLE)


def test_drop_unknown_drops_unreadable_repos(capsys, hostile_pool) -> None:
    shortlist = _rank_pool(capsys, hostile_pool, "--drop-unknown")
    assert [e["model_id"] for e in shortlist["entries"]] == ["vit-good"]


def test_a_crawled_index_recording_bad_config_is_ranked_last(capsys, tmp_path) -> None:
    from hf_spider.hub.index import write_index
    from hf_spider.hub.records import ModelRecord

    good = ModelRecord(repo_id="org/vit", pipeline_tag="image-classification", architectures=("ViTModel",))
    bad = ModelRecord(
        repo_id="org/broken",
        pipeline_tag="image-classification",
        num_parameters=10**8,  # what a size-only ranker likes best
        error="bad_config: config.json is not valid JSON (Expecting value); fix or remove it",
    )
    index = write_index([bad, good], tmp_path / "index.jsonl")
    shortlist = _rank_pool(capsys, index)
    assert [e["model_id"] for e in shortlist["entries"]] == ["org/vit", "org/broken"]
    assert shortlist["entries"][1]["error"].startswith("bad_config")


def test_the_pipeline_applies_the_same_rule(hostile_pool) -> None:
    from hf_spider import pipeline

    selector = pipeline("model-selection")
    shortlist = selector({"labels": ["cat", "dog"], "modality": "image"}, candidates=str(hostile_pool), top_k=0)
    assert shortlist[0].model_id == "vit-good" and shortlist[0].error is None
    assert sorted(e.model_id for e in shortlist if e.error) == sorted(UNREADABLE) and len(shortlist) == 7


# --------------------------------------------------------------------------------------------------- dataset inputs


def _images(folder: Path, n: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def non_utf8_names(tmp: Path) -> Path:
    _images(tmp / "pets" / "cat")
    _images(tmp / "pets" / "dog")
    os.rename(tmp / "pets" / "cat" / "0.png", os.fsencode(tmp / "pets" / "cat") + b"/\xff\xfe.png")
    return tmp / "pets"


def symlinked_class(tmp: Path) -> Path:
    _images(tmp / "elsewhere" / "cat")
    _images(tmp / "pets" / "dog")
    _images(tmp / "pets" / "bird")
    (tmp / "pets" / "cat").symlink_to(tmp / "elsewhere" / "cat")
    return tmp / "pets"


def process_substitution(tmp: Path) -> Path:
    read, write = os.pipe()
    os.write(write, b"text,label\na,x\nb,y\n")
    os.close(write)
    return Path(f"/proc/self/fd/{read}")  # what <(cat ok.csv) hands over


def one_class_folder(tmp: Path) -> Path:
    _images(tmp / "pets" / "cat")
    return tmp / "pets"


def all_corrupt_images(tmp: Path) -> Path:
    for label in ("cat", "dog"):
        (tmp / "pets" / label).mkdir(parents=True)
        (tmp / "pets" / label / "0.png").write_bytes(b"\x89PNG not really")
    return tmp / "pets"


def decompression_bomb(tmp: Path) -> Path:
    """A tiny PNG whose header claims 30000 x 30000 pixels (over PIL's bomb limit twice): never decoded."""
    _images(tmp / "pets" / "dog")
    _images(tmp / "pets" / "cat")
    Image.new("1", (30_000, 30_000)).save(tmp / "pets" / "cat" / "bomb.png", optimize=True)
    return tmp / "pets"


def _write(name: str, data: bytes | str):
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    return make


BAD_DATASETS = {
    "dev null": (lambda tmp: Path("/dev/null"), "neither a regular file nor a folder"),
    "empty path": (lambda tmp: "", "the dataset path is empty"),
    "missing file in the working folder": (lambda tmp: "no-such-table.csv", "'no-such-table.csv' does not exist"),
    "process substitution": (process_substitution, "neither a regular file nor a folder"),
    "fifo": (lambda tmp: _fifo(tmp), "neither a regular file nor a folder"),
    "non-UTF-8 file name": (non_utf8_names, "is not UTF-8; rename it"),
    "symlinked class folder": (symlinked_class, "is a symbolic link (to"),
    "unterminated CSV quote": (
        _write("quote.csv", 'text,label\nhello,pos\n"world,neg\nfoo,neg\n'),
        "quote.csv' as csv: the quoted field that starts on line 3 is never closed",
    ),
    "invalid JSON Lines line": (
        _write("rows.jsonl", '{"text": "a", "label": "x"}\n\n{"text": oops\n'),
        "rows.jsonl' as json: line 3 is not valid JSON",
    ),
    "JSON Lines line that is a list": (
        _write("rows.jsonl", '{"text": "a", "label": "x"}\n[1, 2]\n'),
        "line 2 holds a list, not an object",
    ),
    "label that is an object": (
        _write("rows.jsonl", '{"text": "a", "label": {"x": 1}}\n{"text": "b", "label": {"y": 2}}\n'),
        "holds a dict",
    ),
    "empty file": (_write("empty.csv", b""), "is empty"),
    "header only": (_write("head.csv", "text,label\n"), "has a header but no rows"),
    "latin-1 CSV": (_write("latin.csv", "text,label\ncaf\xe9,a\nthe,b\n".encode("latin-1")), "is not UTF-8"),
    "CSV cut inside a UTF-8 character": (_write("cut.csv", b"text,label\na,x\nb,\xc3"), "ends inside a character"),
    "UTF-16 CSV": (_write("wide.csv", "text,label\na,x\nb,y\n".encode("utf-16")), "is not UTF-8"),
    "one class": (_write("one.csv", "text,label\na,x\nb,x\n"), "single class"),
    "one-class image folder": (one_class_folder, "single class"),
    "only corrupt images": (all_corrupt_images, "none of the 2 images"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_bad_dataset_is_one_line_naming_the_fix(capsys, tmp_path, case) -> None:
    make, message = BAD_DATASETS[case]
    dataset = make(tmp_path)
    with pytest.raises(InvalidDatasetError, match=None) as info:
        load_task_source(dataset)
    assert message in str(info.value) and "\n" not in str(info.value)
    code, _, err = run_cli(capsys, "rank", "--dataset", str(dataset), "--top-k", "1")
    assert_one_line_error(code, err, message)


def test_decompression_bomb_is_left_out_with_a_counted_warning(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        source = load_task_source(decompression_bomb(tmp_path))
    assert source.description.label_names == ("cat", "dog") and source.description.class_counts == (2, 2)
    assert [Path(u).name for u in source.unreadable] == ["bomb.png"]
    assert any("skipped 1 unreadable image(s) of 5" in r.getMessage() for r in caplog.records)


def test_null_labels_are_dropped_and_counted_and_mixed_types_named(tmp_path, caplog) -> None:
    rows = ['{"text": "a", "label": "pos"}', '{"text": "b", "label": 1}', '{"text": "c", "label": "neg"}']
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([*rows, '{"text": "d", "label": null}']) + "\n")
    with caplog.at_level(logging.WARNING):
        source = load_task_source(path)
    assert source.dataset.num_rows == 3 and sorted(source.description.label_names) == ["1", "neg", "pos"]
    assert len(source.notes) == 2
    assert "mix numbers and text" in source.notes[0] and "(1 is the class '1')" in source.notes[0]
    assert source.notes[1].startswith("1 of the 4 rows of dataset 'mixed.jsonl' have no label (null)")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == list(source.notes)


def test_data_notes_reach_the_shortlist(capsys, tmp_path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": "neg"}\n{"text": "c", "label": null}\n')
    code, out, _ = run_cli(capsys, "rank", "--dataset", str(path), "--format", "json", "--top-k", "1")
    assert code == 0
    assert any("have no label (null) and were left out" in n for n in json.loads(out)["metadata"]["notes"])


def _table(path: Path, labels: list) -> Path:
    """A text CSV with one row per label, its column named as ``path``'s labels are asked for (``score``)."""
    path.write_text("text,score\n" + "".join(f"row {i},{label}\n" for i, label in enumerate(labels)))
    return path


@pytest.mark.parametrize("command", ["rank", "rerank"])
def test_fractional_labels_are_refused_as_a_regression_target(capsys, tmp_path, command) -> None:
    path = _table(tmp_path / "reg.csv", [3.142, 0.5, 2.0, 7.25, 1.0])
    with pytest.raises(InvalidDatasetError) as info:
        load_task_source(path, label_column="score")
    message = str(info.value)
    assert message.startswith("column 'score' of dataset 'reg.csv' holds numbers with a fraction (3.142;")
    assert "regression target" in message and "for classification" in message
    assert message.endswith("--label-column (label_column=)") and "\n" not in message
    code, _, err = run_cli(capsys, command, "--dataset", str(path), "--label-column", "score", "--top-k", "1")
    assert_one_line_error(code, err, "look like a regression target")


def test_a_label_column_of_ids_is_noted_before_encoding_and_under_the_shortlist(capsys, tmp_path, caplog) -> None:
    path = _table(tmp_path / "ids.csv", [f"id-{i}" for i in range(60)] + ["a", "a"])
    with caplog.at_level(logging.WARNING):
        source = load_task_source(path, label_column="score")
    assert source.notes == (
        "column 'score' of dataset 'ids.csv' has 61 classes for 62 rows, and 60 rows are the only one of their class: "
        "it reads like an id or free text, and each value is read as a class name; if it is not the class label, pass "
        "the right column with --label-column (label_column=)",
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == list(source.notes)
    argv = ["rank", "--dataset", str(path), "--label-column", "score", "--no-rerank", "--format", "json"]
    code, out, _ = run_cli(capsys, *argv, "--top-k", "1")
    assert code == 0 and source.notes[0] in json.loads(out)["metadata"]["notes"]


@pytest.mark.parametrize(
    ("classes", "singles", "noted"),
    [
        (51, 51, True),  # every row its own class
        (50, 50, False),  # a small few-shot task: not over ID_LIKE_MIN_CLASSES
        (101, 100, True),  # 100 of 150 rows alone
        (101, 50, False),  # 50 of 300 rows alone: a long tail, not an id column
    ],
)
def test_the_id_like_rule_counts_classes_and_rows_alone(classes, singles, noted) -> None:
    from hf_spider.tokens.row_checks import id_like_labels_note

    counts = (1,) * singles + (5,) * (classes - singles)
    note = id_like_labels_note("d", "label", counts, sum(counts))
    assert (note is not None) == noted


@pytest.mark.parametrize(
    "labels",
    [
        [1.0, 2.0, 1.0, 2.0, 3.0, 3.0],  # whole numbers stored as floats are class ids
        [f"class {i % 60}" for i in range(120)],  # 60 classes of 2 rows each
        [f"rare {i}" for i in range(60)] + ["common"] * 100,  # a long tail: 60 of 160 rows alone
    ],
    ids=["integral floats", "many classes of several rows", "long tail"],
)
def test_class_labels_get_no_error_and_no_note(tmp_path, labels) -> None:
    source = load_task_source(_table(tmp_path / "ok.csv", labels), label_column="score")
    assert source.notes == () and source.description.num_classes == len(set(labels))


def test_datasets_cache_goes_under_the_hf_spider_cache(tmp_path) -> None:
    from hf_spider import constants

    path = tmp_path / "rows.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(10)))
    source = load_task_source(path)
    cache = (constants.CACHE_DIR / "datasets").resolve()
    files = [Path(f["filename"]).resolve() for f in source.dataset.cache_files]
    assert files and all(cache in f.parents for f in files)


# ----------------------------------------------------------------------------------------------- command arguments


BAD_ARGUMENTS = {
    "negative top-k": (["rank", "--labels", "a,b", "--modality", "text", "--top-k", "-1"], "--top-k must be >= 0"),
    "rerank top-k": (["rerank", "--dataset", "x", "--top-k", "-3"], "--top-k must be >= 0"),
    "batch size 0": (["rerank", "--dataset", "x", "--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    "batch size text": (["rerank", "--dataset", "x", "--batch-size", "many"], "'many' is not a whole number"),
    "unknown flag": (
        ["rank", "--labels", "a,b", "--frobnicate"],
        "arguments: --frobnicate; see 'hf-spider rank --help'",
    ),
    "max params nan": (["rank", "--labels", "a,b", "--max-params", "nan"], "must be a finite number, got nan"),
    "max params negative": (["rank", "--labels", "a,b", "--max-params", "-5"], "must be >= 0, got -5"),
    "no workers": (["crawl", "--index", "i.jsonl", "--workers", "0"], "--workers: must be >= 1, got 0"),
    "no halving rounds": (["rerank", "--dataset", "x", "--halving-rounds", "0"], "must be >= 1, got 0"),
    "no forward passes": (["rerank", "--dataset", "x", "--max-forward-passes", "0"], "must be >= 1, got 0"),
    "infinite rate": (["crawl", "--index", "i.jsonl", "--rate", "inf"], "--rate: must be a finite number"),
    "rate too low to wait for": (
        ["crawl", "--index", "i.jsonl", "--rate", "1e-300"],  # every model failed with an OverflowError
        "--rate: must be at least 1/120",
    ),
    "negative seed": (["rerank", "--dataset", "x", "--seed", "-1"], "--seed: must be >= 0, got -1"),
    "no samples per class": (["rerank", "--dataset", "x", "--per-class", "0"], "--per-class: must be >= 1, got 0"),
    "negative epochs": (["train-scorer", "--epochs", "-5"], "--epochs: must be >= 1, got -5"),
    "no members": (["train-scorer", "--members", "0"], "--members: must be >= 1, got 0"),
    "prior strength nan": (["train-scorer", "--prior-strength", "nan"], "--prior-strength: must be a finite number"),
    "learning rate nan": (["build-records", "--finetune-lr", "nan"], "--finetune-lr: must be a finite number"),
    "no tokens": (["build-records", "--max-length", "0"], "--max-length: must be >= 1, got 0"),
    "no training samples": (["build-records", "--per-class", "0"], "--per-class: must be >= 1, got 0"),
    "no estimator": (["rerank", "--dataset", "x", "--estimator", ","], "argument --estimator: ',' names nothing"),
    "no ranker": (["evaluate", "--records", "example", "--ranker", " , "], "argument --ranker: ' , ' names nothing"),
    "no estimators": (["build-records", "--estimators", ","], "argument --estimators: ',' names nothing"),
    "no models": (["rank", "--labels", "a,b", "--models", ","], "argument --models: ',' names nothing"),
    "output file named as a folder": (["rank", "--labels", "a,b", "--output", "out/"], "'out/' ends with '/', so it"),
    "evaluate negative seed": (["evaluate", "--records", "example", "--seed", "-2"], "--seed: must be >= 0, got -2"),
    "seed past 2**32 - 1": (  # scikit-learn refused it after the work started
        ["evaluate", "--records", "example", "--seed", "4294967296"],
        "--seed: must be <= 4294967295 (2**32 - 1), got 4294967296",
    ),
    "fine-tuning seed past 2**32 - 1": (  # torch refused it once the records folder was started
        ["build-records", "--finetune-seeds", "0,99999999999999999999999"],
        "--finetune-seeds: must be <= 4294967295",
    ),
    "negative fine-tuning seed": (["build-records", "--finetune-seeds", "1,-1"], "--finetune-seeds: must be >= 0"),
    "label names not UTF-8": (
        ["rank", "--labels", "caf\udce9,b", "--modality", "text"],
        "label name 'caf\\udce9' of 'labels' is not valid UTF-8 text",
    ),
    "empty collection title": (  # exited 0 with no push and no word
        [*RANK_LABELS, "--push-collection", ""],
        "argument --push-collection: an empty name; pass one, or leave the option out",
    ),
    "empty collection namespace": (  # silently meant the token's user
        [*RANK_LABELS, "--push-collection", "T", "--collection-namespace", " "],
        "argument --collection-namespace: an empty name",
    ),
    "missing command": ([], "the following arguments are required: COMMAND"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_argument_is_one_line(capsys, case) -> None:
    argv, message = BAD_ARGUMENTS[case]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, message)
    assert "usage:" not in err  # argparse's usage block is left to --help


SHORTLISTS = {
    "malformed JSON": (b"{not json", "is not valid JSON (line 1, column 2"),
    "empty list": (b"[]", "holds a list, so it is not a shortlist"),
    "no entries": (b'{"task": "t"}', "has no 'entries' list"),
    "entry without id": (b'{"task": "t", "ranker": "r", "entries": [{"score": 1}]}', "has a malformed entry"),
    "reasons not a list": (
        b'{"task": "t", "ranker": "r", "entries": [{"model_id": "a/b", "score": 1, "rank": 1, "reasons": "abc"}]}',
        "has a malformed entry",
    ),
    "metadata not an object": (b'{"task": "t", "ranker": "r", "metadata": [1], "entries": []}', "has a malformed"),
    "size not a number": (
        b'{"task": "t", "ranker": "r", "entries": [{"model_id": "a/b", "score": 1, "rank": 1, "num_parameters": "x"}]}',
        "has a malformed entry",
    ),
    "nested too deep": (b"[" * 100_000, "nests too deep"),
    "score not a number": (
        b'{"task": "t", "ranker": "r", "entries": [{"model_id": "a/b", "score": "high", "rank": 1}]}',
        "has a malformed entry",
    ),
    "not UTF-8": (b"\xff\xfe{}", "is not UTF-8 text"),
}


@pytest.mark.parametrize("case", sorted(SHORTLISTS))
def test_malformed_shortlist_is_one_line(tmp_path, case) -> None:
    data, message = SHORTLISTS[case]
    path = tmp_path / "shortlist.json"
    path.write_bytes(data)
    with pytest.raises(InvalidShortlistError) as info:
        Shortlist.read(path)
    assert message in str(info.value) and "hf-spider rank --format json" in str(info.value)


def test_a_candidate_the_network_cannot_reach_is_a_candidate_failure(monkeypatch) -> None:
    import httpx2
    from huggingface_hub import HfApi, constants

    from hf_spider.errors import CandidateLoadError
    from hf_spider.hub.records import ModelRecord
    from hf_spider.rerank.fetch import fetch_candidate
    from hf_spider.rerank.options import ForwardOptions

    def unreachable(*args, **kwargs):
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "list_repo_files", unreachable)
    with pytest.raises(CandidateLoadError, match=r"could not fetch it from the Hub .*Name or service not known"):
        fetch_candidate(ModelRecord(repo_id="org/model"), ForwardOptions())


def test_rerank_with_a_malformed_shortlist_exits_2(capsys, tmp_path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(6)))
    (tmp_path / "bad.json").write_text("[]")
    code, _, err = run_cli(capsys, "rerank", "--dataset", str(data), "--shortlist", str(tmp_path / "bad.json"))
    assert_one_line_error(code, err, "holds a list, so it is not a shortlist")


@pytest.mark.parametrize("name", ["evil\x1b[2J\x1b[31mred", "cat\u202egpj.exe", "bell\x07"])
def test_control_characters_in_names_are_escaped_in_table_and_markdown(name) -> None:
    shortlist = Shortlist.from_scores(
        {f"org/{name}": 1.0, "org/ok": 0.5}, task=name, ranker="r", metadata={"notes": [f"about {name}"]}
    )
    for text in (shortlist.to_table(), shortlist.to_markdown()):
        assert not any(c in text for c in ("\x1b", "\u202e", "\x07")), text
        assert "\\u" in text


# ------------------------------------------------------------------------------------------------------- long work


def test_an_interrupted_encoding_keeps_what_finished_and_resumes(tmp_path) -> None:
    from hf_spider.tokens.resumable import encode_in_chunks

    items = [f"label {i}" for i in range(50)]
    calls: list[int] = []
    stop_at = [3]  # Ctrl-C during the third chunk of the first run only

    def encode(chunk):
        calls.append(len(chunk))
        if len(calls) == stop_at[0]:
            stop_at[0] = 0
            raise KeyboardInterrupt
        return _plain(chunk)

    with pytest.raises(KeyboardInterrupt):
        encode_in_chunks(encode, items, what="label names", chunk_dir=tmp_path, chunk_size=10)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # what finished is kept
    calls.clear()
    result = encode_in_chunks(encode, items, what="label names", chunk_dir=tmp_path, chunk_size=10)
    assert calls == [10, 10, 10]  # only the three chunks that had not finished
    np.testing.assert_array_equal(result, _plain(items))


def _plain(chunk):
    return np.array([[float(item.split()[1]), 1.0] for item in chunk])


def test_large_sets_say_so_before_and_after_the_first_chunk(tmp_path, caplog, monkeypatch) -> None:
    from hf_spider.tokens import resumable

    monkeypatch.setattr(resumable, "LARGE_SET", 20)
    with caplog.at_level(logging.WARNING):
        resumable.encode_in_chunks(
            _plain, [f"l {i}" for i in range(30)], what="label names", chunk_dir=tmp_path, chunk_size=10
        )
    messages = [r.getMessage() for r in caplog.records if r.name == resumable.__name__]
    assert messages[0].startswith("encoding 30 label names in 3 chunks; finished chunks are kept in")
    assert messages[1].startswith("about ") and "left for the other label names" in messages[1]


# -------------------------------------------------------------------------------------------- property-based tests


def _one_line_or_success(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(error_lines(err)) == 1, err


FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
)
CSV_LIKE = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from(["text", "label", ",", '"', "\n", "\r\n", "a", "b", "1", "\xe9", "\ufeff", " "]), max_size=40
    ).map(lambda parts: "".join(parts).encode()),
)
JSONL_LIKE = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "text": st.text(max_size=5),
                    "label": st.one_of(
                        st.none(), st.integers(0, 2), st.sampled_from(["a", "b"]), st.lists(st.integers(), max_size=2)
                    ),
                }
            ),
            st.text(max_size=10),
        ),
        max_size=6,
    ).map(lambda rows: "\n".join(json.dumps(r) if isinstance(r, dict) else r for r in rows).encode()),
)


@FUZZ
@given(data=CSV_LIKE, suffix=st.sampled_from([".csv", ".tsv"]))
def test_random_bytes_as_a_csv_dataset(capsys, tmp_path_factory, data, suffix) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"data{suffix}"
    path.write_bytes(data)
    code, _, err = run_cli(capsys, "rank", "--dataset", str(path), "--top-k", "1")
    _one_line_or_success(code, err)


@FUZZ
@given(data=JSONL_LIKE)
def test_random_bytes_as_a_json_lines_dataset(capsys, tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "data.jsonl"
    path.write_bytes(data)
    code, _, err = run_cli(capsys, "rank", "--dataset", str(path), "--top-k", "1")
    _one_line_or_success(code, err)


@FUZZ
@given(
    config=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_random_bytes_as_a_config_never_outrank_a_readable_model(capsys, tmp_path_factory, config) -> None:
    root = tmp_path_factory.mktemp("pool")
    (root / "vit-good").mkdir()
    (root / "vit-good" / "config.json").write_text(json.dumps(VIT_CONFIG))
    (root / "random").mkdir()
    (root / "random" / "config.json").write_bytes(config)
    code, out, err = run_cli(capsys, *RANK_LABELS, "--candidates", str(root), "--format", "json", "--top-k", "0")
    _one_line_or_success(code, err)
    entries = json.loads(out)["entries"] if code == 0 else []
    if entries and entries[0]["model_id"] == "random":
        assert entries[0]["error"] is None  # it may outrank the ViT only when it was read


FLAGS = [
    "--dataset",
    "--labels",
    "--modality",
    "image",
    "text",
    "--top-k",
    "--output",
    "--format",
    "json",
    "-",
    "0",
    "-1",
    "--candidates",
    "bundled",
    "--models",
    "--max-params",
    "--license",
    "--drop-unknown",
    "--batch-size",
    "-k",
    "--shortlist",
    "--records",
    "example",
    "--output-dir",
    "--index",
    "--ranker",
    "--split",
    "--name",
    "a,b",
    "",
]


class _WouldRunError(Exception):
    """Raised by the stand-ins for the long work a random command line may reach: its arguments were accepted."""


@FUZZ
@given(
    command=st.sampled_from(["rank", "rerank", "evaluate", "crawl", "index", "train-scorer", "build-records", "x"]),
    args=st.lists(
        st.one_of(st.sampled_from(FLAGS), st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=12)),
        max_size=8,
    ),
)
def test_random_command_lines_succeed_or_fail_in_one_line(capsys, monkeypatch, tmp_path, command, args) -> None:
    import importlib

    import hf_spider.cli.crawl as crawl_cli
    import hf_spider.cli.train_scorer as train
    import hf_spider.metarecords.build as build
    import hf_spider.rerank.combine as combine

    evaluate = importlib.import_module("hf_spider.evaluation.evaluate")  # the package exports a function so named

    def would_run(*a, **k):
        raise _WouldRunError

    for module, name in (
        (train, "train_default"),
        (build, "build_records"),
        (evaluate, "evaluate_records"),
        (combine, "rerank_shortlist"),
        (crawl_cli, "crawl"),
        (crawl_cli, "crawl_dir"),
    ):
        monkeypatch.setattr(module, name, would_run)
    monkeypatch.chdir(tmp_path)  # anything a random command line writes lands here
    try:
        code, _, err = run_cli(capsys, command, *args)
    except _WouldRunError:
        return
    _one_line_or_success(code, err)


def test_a_scorer_path_that_is_no_scorer_folder_is_one_line(capsys, tmp_path) -> None:
    code, _, err = run_cli(capsys, *RANK_LABELS, "--scorer", str(tmp_path))
    assert_one_line_error(code, err, f"'{tmp_path}' holds no config.json, so it is not a scorer folder")
    assert "WARNING" not in err
    code, _, err = run_cli(capsys, *RANK_LABELS, "--scorer", "./no-such-scorer")
    assert_one_line_error(code, err, "scorer folder './no-such-scorer' does not exist")


def test_a_modality_the_dataset_contradicts_is_one_line(capsys, tmp_path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(6)))
    code, _, err = run_cli(capsys, "rank", "--dataset", str(data), "--modality", "image", "--no-rerank")
    assert_one_line_error(code, err, "--modality image contradicts the dataset, whose column 'text' holds text")
    code, _, _ = run_cli(capsys, "rank", "--dataset", str(data), "--modality", "text", "--no-rerank", "--top-k", "1")
    assert code == 0


def test_a_scorer_folder_with_corrupt_weights_is_one_line(capsys, tmp_path) -> None:
    folder = tmp_path / "scorer"
    folder.mkdir()
    (folder / "config.json").write_text((ROOT / "hf_spider" / "data" / "scorer" / "config.json").read_text())
    (folder / "model.safetensors").write_bytes(b"junk")
    code, _, err = run_cli(capsys, *RANK_LABELS, "--scorer", str(folder))
    assert_one_line_error(code, err, f"cannot load a scorer from '{folder}'")


def test_an_index_that_is_not_utf8_or_has_mistyped_rows_is_one_line(capsys, tmp_path) -> None:
    code, _, err = run_cli(capsys, "index", "stats", str(tmp_path))
    assert_one_line_error(code, err, f"index file '{tmp_path}' is a folder")
    code, _, err = run_cli(capsys, "index", "stats", "/dev/null")
    assert_one_line_error(code, err, "index file '/dev/null' is not a regular file")
    code, _, err = run_cli(capsys, "crawl", "--index", str(tmp_path / "index.csv"), "--models", "a/b")
    assert_one_line_error(code, err, "is neither .jsonl nor .parquet")
    rows = {
        "latin.jsonl": ('{"repo_id": "caf\xe9/x"}\n'.encode("latin-1"), "is not UTF-8 text"),
        "number_id.jsonl": (
            b'{"repo_id": 5}\n',
            "row 1 is not a valid model record ('repo_id' must be a string, got int",
        ),
        "tag.jsonl": (b'{"repo_id": "a/b", "pipeline_tag": 5}\n', "'pipeline_tag' must be a string, got int"),
        "size.jsonl": (b'{"repo_id": "a/b", "num_parameters": -5}\n', "'num_parameters' is -5"),
        "top1.jsonl": (b'{"repo_id": "a/b", "imagenet_top1": "81.2"}\n', "'imagenet_top1' must be a number, got str"),
        "gated.jsonl": (b'{"repo_id": "a/b", "gated": "no"}\n', "'gated' must be true or false, got str"),
    }
    for name, (data, message) in rows.items():
        (tmp_path / name).write_bytes(data)
        code, _, err = run_cli(capsys, *RANK_LABELS, "--candidates", str(tmp_path / name))
        assert_one_line_error(code, err, message)


def test_index_stats_of_another_suffix_names_the_accepted_ones(capsys, tmp_path) -> None:
    (tmp_path / "real.csv").write_text("repo_id,downloads\norg/a,5\n")
    code, _, err = run_cli(capsys, "index", "stats", str(tmp_path / "real.csv"))
    assert_one_line_error(code, err, "real.csv' is neither .jsonl nor .parquet")  # was: line 1 is not valid JSON


def test_train_scorer_checks_every_file_it_would_write_before_training(capsys, tmp_path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"my": 1}')
    code, _, err = run_cli(capsys, "train-scorer", "--output", str(project), "--epochs", "1")
    assert_one_line_error(code, err, "holds a config.json that is not a hf-spider scorer's")
    assert (project / "config.json").read_text() == '{"my": 1}' and sorted(p.name for p in project.iterdir()) == [
        "config.json"
    ]
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "README.md").symlink_to(tmp_path / "elsewhere.md")
    code, _, err = run_cli(capsys, "train-scorer", "--output", str(linked), "--epochs", "1")
    assert_one_line_error(code, err, "is a symbolic link")
    assert "--follow-symlinks" not in err and sorted(p.name for p in linked.iterdir()) == ["README.md"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*RANK_LABELS, "--push-collection", "T", "--output", "{out}"], "--push-collection cannot push while HF_HUB"),
        (["train-scorer", "--output", "{out}", "--push-to-hub", "me/x"], "--push-to-hub cannot push while HF_HUB_OFF"),
        (["crawl", "--index", "{out}", "--models", "a/b", "--push-to-hub", "me/x"], "--push-to-hub cannot push"),
        (
            [*RANK_LABELS, "--collection-public", "--output", "{out}"],
            "--collection-public only work with --push-collection",
        ),
    ],
)
def test_a_push_that_cannot_happen_is_refused_before_the_work(capsys, tmp_path, argv, message) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *(a.replace("{out}", str(out)) for a in argv))
    assert_one_line_error(code, err, message)
    assert not out.exists()  # nothing ranked, trained or crawled


def test_index_stats_with_a_journal_that_is_not_utf8_is_one_line(capsys, tmp_path) -> None:
    (tmp_path / "j1").mkdir()
    (tmp_path / "j1" / "idx.jsonl.journal.jsonl").write_bytes(b"\xff\xfe\n")  # was: UnicodeDecodeError
    code, _, err = run_cli(capsys, "index", "stats", str(tmp_path / "j1" / "idx.jsonl"))
    assert_one_line_error(code, err, "crawl journal '")
    assert "is not UTF-8 text (byte 0)" in err


def test_a_push_without_a_token_is_refused_before_the_ranking(capsys, tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    code, _, err = run_cli(capsys, *RANK_LABELS, "--push-collection", "T", "--output", str(tmp_path / "out.json"))
    assert_one_line_error(code, err, "--push-collection needs a Hub write token and none is found; run `hf auth login`")
    assert not (tmp_path / "out.json").exists()
