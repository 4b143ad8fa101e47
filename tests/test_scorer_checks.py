"""A scorer folder or Hub repo is untrusted: its files are checked before they are allocated, decompressed or ranked
(:mod:`hf_spider.scorer.checks`), and every failure is one :class:`ScorerConfigError` naming the scorer and the fix.

Each case breaks a copy of the shipped scorer in one way and loads it as ``hf-spider rank --scorer`` does (the numpy
scorer, :func:`load_spider_ranker`) and as the pipeline does (the torch one, :meth:`SpiderRanker.from_pretrained`).
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from hf_spider.cli import main
from hf_spider.errors import ScorerConfigError
from hf_spider.hub import sizes
from hf_spider.scorer import checks
from hf_spider.scorer.inference import load_spider_ranker
from hf_spider.scorer.paths import default_scorer_path
from hf_spider.scorer.ranker import SpiderRanker
from hf_spider.scorer.task_aware import FILE_NAME

ROOT = Path(__file__).resolve().parents[1]
LOADERS = {"numpy": load_spider_ranker, "torch": SpiderRanker.from_pretrained}


@pytest.fixture
def scorer(tmp_path: Path) -> Path:
    """A copy of the shipped scorer folder, to break."""
    folder = tmp_path / "scorer"
    shutil.copytree(default_scorer_path(), folder)
    return folder


def _refused(load: Callable[[Path], object], folder: Path, message: str) -> str:
    """``load(folder)`` raises one line naming the scorer and holding ``message``; that line."""
    with pytest.raises(ScorerConfigError) as info:
        load(folder)
    text = str(info.value)
    assert "\n" not in text and str(folder) in text and message in text, text
    return text


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder: Path, config: object) -> None:
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))


def _edit_weights(folder: Path, edit: Callable[[dict[str, np.ndarray]], object]) -> None:
    weights = load_file(folder / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors")


# ----------------------------------------------------------------------------------------------------- config.json


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden": 20_000}, "describes 32,268 MiB of weights (the largest, 'members.0.head.0.weight'"),
        ({"members": 10**7}, "asks for 10,000,000 members, over the 64 a scorer may average"),
        ({"forest_trees": 10**6, "forest_nodes": 10**6}, "MiB a scorer may hold"),
        ({"pooled": 10**20}, "'pooled': 100000000000000000000, not a whole number from 1 to 67,108,864"),
    ],
)
def test_config_sizes_past_the_caps_are_refused_before_anything_is_allocated(
    scorer, monkeypatch, loader, changes, message
) -> None:
    from hf_spider.scorer import model

    def allocated(*args, **kwargs):
        raise AssertionError("a member was built before the config was checked")

    monkeypatch.setattr(model._Member, "__init__", allocated)
    _write_config(scorer, {**_config(scorer), **changes})
    _refused(LOADERS[loader], scorer, message)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (lambda c: [c], "its config.json holds a JSON array, not an object"),
        (lambda c: "[" * 100_000 + "]" * 100_000, "its config.json nests too deeply"),
        (lambda c: "{not json", "its config.json is not JSON (Expecting property name"),
        (lambda c: {**c, "hidden": "48"}, "'hidden': '48', not a whole number"),
        (lambda c: {**c, "hidden": 48.5}, "'hidden': 48.5, not a whole number"),
        (lambda c: {**c, "members": True}, "'members': True, not a whole number"),
        (lambda c: {**c, "members": 0}, "'members': 0, not a whole number from 1"),
        (lambda c: {**c, "model_ids": list(range(344))}, "'model_ids': [0, 1, 2, 3, 4, 5, ...], not a list of"),
        (lambda c: {**c, "sample_encoders": ["a"]}, "'sample_encoders': ['a'], not an object of strings"),
        (lambda c: {k: v for k, v in c.items() if k != "in_dim"}, "its config.json has no 'in_dim'"),
        (lambda c: {**c, "in_dim": 7}, "in_dim=7 does not match text_dim=384"),
        (lambda c: {**c, "feature_schema_version": 1}, "reads PTM tokens of schema 1"),
        (lambda c: {**c, "model_type": "bert"}, "is the config of a 'bert' model, not of a hf-spider scorer"),
        (lambda c: '{"a": "' + "x" * checks.MAX_CONFIG_BYTES + '"}', "bytes, over the 16,777,216 a scorer's file"),
    ],
    ids=[
        "list",
        "nested",
        "not-json",
        "string",
        "fraction",
        "bool",
        "no-members",
        "ids",
        "encoders",
        "missing",
        "in-dim",
        "schema",
        "bert",
        "huge",
    ],
)
def test_a_config_that_is_no_scorer_config_is_one_error(scorer, loader, config, message) -> None:
    _write_config(scorer, config(_config(scorer)))
    _refused(LOADERS[loader], scorer, message)


def _under_two_gigabytes() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_config_that_is_a_device_or_a_pipe_is_refused_unread(scorer, kind) -> None:
    """Run as a command under a 2 GB memory limit: an unbounded read of ``/dev/zero`` fills any memory, a FIFO
    blocks the read forever."""
    (scorer / "config.json").unlink()
    if kind == "dev-zero":
        (scorer / "config.json").symlink_to("/dev/zero")
    else:
        os.mkfifo(scorer / "config.json")
    argv = ["rank", "--labels", "cat,dog", "--modality", "image", "--scorer", str(scorer)]
    done = subprocess.run(
        [sys.executable, "-m", "hf_spider", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_under_two_gigabytes,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    errors = [line for line in done.stderr.replace("\r", "\n").splitlines() if ": error: " in line]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and "its config.json is not a regular file (a device or a pipe)" in errors[0], errors


# ----------------------------------------------------------------------------------------------- model.safetensors


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda w: w.update({"members.0.q.weight": np.zeros((48, 47), np.float32)}),
            "tensor 'members.0.q.weight' is [48, 47] F32 there but config.json makes it [48, 48] F32",
        ),
        (
            lambda w: w.update({"calibration": w["calibration"].astype(np.float64)}),
            "tensor 'calibration' is [2] F64 there but config.json makes it [2] F32",
        ),
        (
            lambda w: w.update({"forest_left": w["forest_left"].astype(np.float32)}),
            "tensor 'forest_left' is [100, 145] F32 there",
        ),
        (lambda w: w.pop("calibration"), "it lacks 1 tensor(s) (first 'calibration')"),
        (lambda w: w.update({"evil": np.zeros(3, np.float32)}), "it holds 1 this TransferScorer does not have"),
    ],
    ids=["shape", "dtype", "index-dtype", "missing", "extra"],
)
def test_weights_that_do_not_fit_the_config_are_refused_before_they_are_read(scorer, loader, edit, message) -> None:
    _edit_weights(scorer, edit)
    _refused(LOADERS[loader], scorer, f"its model.safetensors does not match its config.json: {message}")


@pytest.mark.parametrize("loader", LOADERS)
def test_weights_that_are_no_safetensors_file_are_one_error(scorer, loader) -> None:
    (scorer / "model.safetensors").write_bytes(b"\0" * 10)
    _refused(LOADERS[loader], scorer, "its model.safetensors is no safetensors file")


def _set(name: str, index: tuple, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda w: w[name].__setitem__(index, value)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("members.0.skip.weight", (0, 0), np.inf), "1 value(s) in 'members.0.skip.weight' that are not finite"),
        (_set("collab", (0, 0), -np.inf), "1 value(s) in 'collab' that are not finite numbers (first -inf)"),
        (_set("calibration", (0,), np.nan), "in 'calibration' that are not finite numbers (first nan)"),
        (_set("evidence_confidence", (slice(None),), np.nan), "5 value(s) in 'evidence_confidence' that are not"),
        (_set("evidence_confidence", (0,), 2.0), "holds 2.0 in 'evidence_confidence', which holds values in [0, 1]"),
        (_set("collab", (0, 0), 7.0), "holds 7.0 in 'collab', which holds values in [0, 1]"),
        (_set("calibration", (0,), -1.0), "a calibration slope of -1.0, which would reverse or flatten"),
        (_set("forest_left", (0, 0), 10**9), "a forest that cannot be walked (a node's child is outside its tree"),
        (_set("forest_feature", (0, 0), 500), "a forest that cannot be walked (a node reads feature 500"),
        (_set("forest_left", (0, 0), 0), "a node's child comes before it, so a walk could loop forever"),
    ],
    ids=["inf", "collab-inf", "nan", "nan-confidence", "confidence", "percentile", "slope", "child", "feature", "loop"],
)
def test_weights_that_are_not_finite_or_out_of_range_are_refused(scorer, loader, edit, message) -> None:
    _edit_weights(scorer, edit)
    _refused(LOADERS[loader], scorer, message)


def test_no_record_in_the_collaborative_table_is_nan_by_design() -> None:
    weights = load_file(default_scorer_path() / "model.safetensors")
    assert np.isnan(weights["collab"]).any()
    checks.check_values(weights)


def test_a_nan_confidence_never_reaches_the_json_shortlist(scorer, capsys) -> None:
    _edit_weights(scorer, _set("evidence_confidence", (slice(None),), np.nan))
    argv = ["rank", "--labels", "cat,dog", "--modality", "image", "--format", "json", "--scorer", str(scorer)]
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.replace("\r", "\n").splitlines() if ": error: " in line]
    assert code == 2 and not out and "Traceback" not in err
    assert len(errors) == 1 and "'evidence_confidence' that are not finite numbers" in errors[0], errors


# -------------------------------------------------------------------------------------------------- task_aware.npz


def _members() -> dict[str, bytes]:
    with zipfile.ZipFile(default_scorer_path() / FILE_NAME) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _write_npz(folder: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(folder / FILE_NAME, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _header(**changes: object) -> bytes:
    header = json.loads(str(np.load(io.BytesIO(_members()["header.npy"]))))
    return _npy(np.array(json.dumps({**header, **changes})))


def _bomb(folder: Path) -> None:
    """coef.npy deflated: 260 MiB of zeros in a file of 1 MB, its size declared in the zip directory."""
    with zipfile.ZipFile(folder / FILE_NAME, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in _members().items():
            if name != "coef.npy":
                archive.writestr(name, data)
                continue
            with archive.open(name, "w", force_zip64=True) as f:
                f.write(_npy_header((260 * 2**17,)))
                for _ in range(260):
                    f.write(bytes(2**20))


def _many_entries(folder: Path) -> None:
    with zipfile.ZipFile(folder / FILE_NAME, "w") as archive:
        for i in range(10_000):
            archive.writestr(f"{i}", b"")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_bomb, "it declares 260 MiB of arrays uncompressed, over the 256 MiB a scorer's file may hold"),
        (
            lambda d: _write_npz(d, {**_members(), "coef.npy": _npy_header((10**4, 10**4, 10**4)) + bytes(64)}),
            "its coef.npy declares a [10000, 10000, 10000] float64 array (8,000,000,000,000 bytes), more than its",
        ),
        (
            lambda d: _write_npz(d, {**_members(), "evil.npy": _npy(np.zeros(3))}),
            "its zip directory declares 8 members",
        ),
        (_many_entries, "its zip directory declares 10000 members"),
        (
            lambda d: _write_npz(d, {**_members(), "bias.npy": _npy(np.array([object()] * 3))}),
            "its bias.npy declares a 1-dimensional object array, not a 1-dimensional float array",
        ),
        (
            lambda d: _write_npz(d, {**_members(), "bias.npy": _npy(np.zeros(3, bool))}),
            "its bias.npy declares a 1-dimensional bool array",
        ),
        (
            lambda d: _write_npz(d, {k: v for k, v in _members().items() if k != "coef.npy"}),
            "its zip directory declares 6 members",
        ),
        (
            lambda d: _write_npz(d, {**_members(), "header.npy": _header(confidence=float("nan"))}),
            "its header's confidence is nan, not a finite number in [0.0, 1.0]",
        ),
        (
            lambda d: _write_npz(d, {**_members(), "header.npy": _npy(np.array("[1, 2]"))}),
            "its header holds a JSON array, not an object",
        ),
        (
            lambda d: _write_npz(d, {**_members(), "header.npy": _header(model_ids=[1, 2])}),
            "its header's model_ids is not a list of strings",
        ),
        (lambda d: (d / FILE_NAME).write_bytes(b"PK\x03\x04 not a zip"), "it is not a zip archive"),
        (
            lambda d: ((d / FILE_NAME).unlink(), (d / FILE_NAME).symlink_to("/dev/zero")),
            "it is not a regular file (a device or a pipe)",
        ),
    ],
    ids=[
        "bomb",
        "declared",
        "extra",
        "directory",
        "object",
        "bool",
        "missing",
        "nan-confidence",
        "header-list",
        "header-ids",
        "not-zip",
        "dev-zero",
    ],
)
def test_a_task_aware_file_is_checked_before_it_is_decompressed(scorer, build, message) -> None:
    build(scorer)
    with pytest.raises(ScorerConfigError, match="cannot load the task-aware model beside the scorer") as info:
        load_spider_ranker(scorer)
    assert "\n" not in str(info.value) and message in str(info.value), info.value


# ------------------------------------------------------------------------------------------------------------- Hub


def test_a_missing_hub_repo_or_revision_says_so(loopback_hub, tmp_path, scorer, monkeypatch) -> None:
    """The mixin went on without a config when the Hub answered 404, then blamed a version mismatch."""
    from huggingface_hub import HfApi, constants

    from hf_spider.cli.train_scorer import push_scorer_folder
    from hf_spider.testing.loopback_hub import DEFAULT_USER

    repo_id = f"{DEFAULT_USER}/spider-scorer"
    push_scorer_folder(default_scorer_path(), repo_id, token=loopback_hub.token)
    with pytest.raises(ScorerConfigError, match="its Hub repo has no revision 'no-such-branch'; pass a branch"):
        SpiderRanker.from_pretrained(repo_id, revision="no-such-branch")
    with pytest.raises(ScorerConfigError, match=f"from '{DEFAULT_USER}/no-such-scorer': no such repo on the Hub"):
        load_spider_ranker(f"{DEFAULT_USER}/no-such-scorer")
    api = HfApi(token=loopback_hub.token)
    api.create_repo(f"{DEFAULT_USER}/no-scorer")
    api.upload_file(path_or_fileobj=b"# a card", path_in_repo="README.md", repo_id=f"{DEFAULT_USER}/no-scorer")
    with pytest.raises(ScorerConfigError, match=r"its Hub repo holds no config\.json, so it is no scorer repo"):
        SpiderRanker.from_pretrained(f"{DEFAULT_USER}/no-scorer")
    _write_config(scorer, {**_config(scorer), "members": 10**7})  # a Hub repo's config is checked as a folder's
    push_scorer_folder(scorer, f"{DEFAULT_USER}/huge", token=loopback_hub.token)
    with pytest.raises(ScorerConfigError, match="asks for 10,000,000 members"):
        SpiderRanker.from_pretrained(f"{DEFAULT_USER}/huge")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ScorerConfigError, match=f"is not in the local cache .* run `hf download {repo_id}` while"):
        SpiderRanker.from_pretrained(repo_id)


def _push(hub, folder: Path | None = None) -> str:
    """The scorer in ``folder`` (default: the shipped one) pushed to the loopback Hub, its request log emptied."""
    from hf_spider.cli.train_scorer import push_scorer_folder
    from hf_spider.testing.loopback_hub import DEFAULT_USER

    repo_id = f"{DEFAULT_USER}/spider-scorer"
    push_scorer_folder(folder or default_scorer_path(), repo_id, token=hub.token)
    hub.clear_requests()
    return repo_id


def _over_the_cap(repo_id: str, filename: str, size: int, cap: int) -> str:
    return (
        f"cannot load a scorer from '{repo_id}': its {filename} on the Hub is {size:,} bytes, over the {cap:,} a "
        "scorer's file may have, so it is not downloaded; pass the repo `hf-spider train-scorer --push-to-hub` wrote"
    )


@pytest.mark.parametrize("loader", ["SpiderRanker", "TransferScorer"])
@pytest.mark.parametrize(
    ("filename", "caps"),
    [("config.json", {"MAX_CONFIG_BYTES": 4096}), ("model.safetensors", {"MAX_TENSOR_BYTES": 4096})],
)
def test_a_hub_file_over_its_cap_is_refused_before_anything_is_downloaded(
    loopback_hub, monkeypatch, loader, filename, caps
) -> None:
    """hf_hub_download takes any size: a 50 GB model.safetensors was downloaded in full, then refused on disk. The caps
    are lowered here so that the shipped scorer's files are over them."""
    from hf_spider.scorer.model import TransferScorer

    repo_id = _push(loopback_hub)
    for name, value in {**caps, "SAFETENSORS_HEADER_BYTES": 0}.items():
        monkeypatch.setattr(checks, name, value)
    size = (default_scorer_path() / filename).stat().st_size
    load = SpiderRanker.from_pretrained if loader == "SpiderRanker" else TransferScorer.from_pretrained
    with pytest.raises(ScorerConfigError) as info:
        load(repo_id)
    assert str(info.value) == _over_the_cap(repo_id, filename, size, 4096)
    # one request, for the sizes of the files not in the cache: nothing was fetched, not even config.json's HEAD
    assert [(r.method, r.path) for r in loopback_hub.requests] == [("POST", f"/api/models/{repo_id}/paths-info/main")]


def test_a_task_aware_model_over_its_cap_on_the_hub_is_refused_undownloaded(loopback_hub, monkeypatch, scorer) -> None:
    (scorer / FILE_NAME).write_bytes(bytes(3 * 2**20))  # never read: refused by the size the Hub gives
    repo_id = _push(loopback_hub, scorer)
    monkeypatch.setattr(checks, "MAX_TENSOR_BYTES", 2 * 2**20)  # the scorer's own 1.4 MB of weights stay within it
    with pytest.raises(ScorerConfigError) as info:
        SpiderRanker.from_pretrained(repo_id)
    assert str(info.value) == _over_the_cap(repo_id, FILE_NAME, 3 * 2**20, checks.file_cap(FILE_NAME))
    assert loopback_hub.count(FILE_NAME) == 0  # not even a HEAD: its size came with the scorer's, in one request
    assert loopback_hub.count("/paths-info/", method="POST") == 1


def test_the_size_request_is_retried_and_a_hub_that_stays_down_is_said_as_such(
    loopback_hub, monkeypatch, tmp_path
) -> None:
    from dataclasses import replace

    from huggingface_hub import constants

    from hf_spider.scorer.model import TransferScorer

    repo_id = _push(loopback_hub)
    monkeypatch.setattr(sizes, "HUB_SIZES_POLICY", replace(sizes.HUB_SIZES_POLICY, max_retries=2, backoff=0.01))
    rule = loopback_hub.faults.add("503", match="paths-info", times=1)
    TransferScorer.from_pretrained(repo_id)
    assert rule.hits == 1 and loopback_hub.count("/paths-info/") == 2
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    loopback_hub.clear_requests()
    loopback_hub.faults.add("503", match="paths-info")
    with pytest.raises(ScorerConfigError) as info:
        TransferScorer.from_pretrained(repo_id)
    assert str(info.value).startswith(
        f"cannot load a scorer from '{repo_id}': its config.json or model.safetensors is not in the local cache and "
        "the Hub cannot be reached"
    )
    assert loopback_hub.count("/paths-info/") == 3 and loopback_hub.count("/resolve/") == 0


@pytest.mark.parametrize("task_aware", [True, False], ids=["with-task-aware", "scorer-only"])
def test_a_hub_scorer_is_sized_in_one_request_and_not_again_from_the_cache(
    loopback_hub, monkeypatch, scorer, task_aware
) -> None:
    from huggingface_hub import constants

    if not task_aware:
        (scorer / FILE_NAME).unlink()
    repo_id = _push(loopback_hub, scorer)
    files = ("config.json", "model.safetensors", FILE_NAME)
    assert (SpiderRanker.from_pretrained(repo_id).task_aware is not None) == task_aware
    assert loopback_hub.count("/paths-info/", method="POST") == 1
    assert [loopback_hub.count(f"/resolve/main/{name}$", method="GET") for name in files] == [1, 1, int(task_aware)]
    loopback_hub.clear_requests()
    SpiderRanker.from_pretrained(repo_id)  # every file (or its absence) is cached: no download, so no size asked
    assert loopback_hub.count("/paths-info/") == 0 and loopback_hub.count("/resolve/", method="GET") == 0
    loopback_hub.clear_requests()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    ranker = SpiderRanker.from_pretrained(repo_id)
    assert ranker.scorer is not None and (ranker.task_aware is not None) == task_aware
    assert loopback_hub.requests == []


# ---------------------------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    "config",
    [
        json.loads((default_scorer_path() / "config.json").read_text()),
        {"text_dim": 8, "proto_dim": 5, "stats_dim": 3, "hidden": 6, "pooled": 2, "members": 2, "text_rank": 0},
        {"text_dim": 8, "proto_dim": 8, "latent_rank": 0, "forest_trees": 3, "forest_nodes": 7, "train_tasks": ["a"]},
    ],
    ids=["shipped", "small", "forest"],
)
def test_the_layout_checked_without_torch_is_the_networks(config) -> None:
    from hf_spider.scorer.model import TransferScorer
    from hf_spider.tokens.ptm import token_dim

    kwargs = {k: v for k, v in config.items() if k in checks.CONFIG_KEYS} | {"in_dim": token_dim(config["text_dim"])}
    network = TransferScorer(**kwargs)
    names = {"torch.float32": "F32", "torch.int64": "I64"}
    held = {k: checks.TensorSpec(tuple(t.shape), names[str(t.dtype)]) for k, t in network.state_dict().items()}
    assert checks.expected_tensors(network._hub_mixin_config) == held


def test_the_safetensors_header_allowance_holds_the_largest_header_the_caps_allow() -> None:
    config = {**json.loads((default_scorer_path() / "config.json").read_text()), "members": checks.MAX_MEMBERS}
    offsets = [10**12 - 1, 10**12 - 1]  # wider than any offset under the cap
    header = {
        n: {"dtype": t.dtype, "shape": [checks._MAX_SIZE] * len(t.shape), "data_offsets": offsets}
        for n, t in checks.expected_tensors(config).items()
    }
    header["__metadata__"] = {"format": "pt"}
    assert 8 + len(json.dumps(header, separators=(",", ":"))) < checks.SAFETENSORS_HEADER_BYTES / 4


def test_the_constants_spelt_out_for_numpy_are_the_networks() -> None:
    import inspect

    from hf_spider.scorer.inputs import COLD_START_EXTRA
    from hf_spider.scorer.model import TransferScorer
    from hf_spider.scorer.pair import PAIR_FEATURES
    from hf_spider.tokens.ptm import HEAD_DIM

    assert len(PAIR_FEATURES) == checks.PAIR_WIDTH and HEAD_DIM + len(COLD_START_EXTRA) == checks.FOREST_INPUTS
    assert set(checks.CONFIG_KEYS) == set(inspect.signature(TransferScorer.__init__).parameters) - {"self"}


def test_the_default_ranking_still_loads_without_torch() -> None:
    code = "import sys; from hf_spider.scorer.inference import load_spider_ranker; load_spider_ranker(); "
    code += "assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60, env={**os.environ})
