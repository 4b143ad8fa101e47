"""The Hub crawler against the loopback Hub: correct records, faults, incremental and resumed crawls, offline mode."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hf_spider.cli import main
from hf_spider.errors import HubCrawlError, InvalidIndexError, OfflineCacheMissError
from hf_spider.hub import crawl as crawl_module
from hf_spider.hub.crawl import Crawler, CrawlReport, Selection, crawl
from hf_spider.hub.dedup import aliases_of, collapse_copies
from hf_spider.hub.index import read_index
from hf_spider.hub.snapshot import CrawlJournal
from hf_spider.testing import DEFAULT_USER, LoopbackHub
from hf_spider.testing.repos import HOSTILE_KINDS, GeneratedRepo, change_repo, generate_repos, mismatches

N = 50  # covers every bad kind once (slots 3, 13, 23, 33 of 50)
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, "workers": 4}


def _crawl(hub: LoopbackHub, index: Path, selection: Selection | None = None, **kw: Any) -> CrawlReport:
    settings = {**FAST, "with_config": True, "with_card": True, **kw}
    return crawl(index, selection or Selection(sort=None), endpoint=hub.endpoint, **settings)


def _check(index: Path, repos: list[GeneratedRepo], *, with_config: bool = True, with_card: bool = True) -> None:
    records = read_index(index)
    assert len(records) == len({r.repo_id for r in records}) == len(repos)
    by_id = {r.repo_id: r for r in records}
    expected = [g.expected(with_config=with_config, with_card=with_card) for g in repos]
    wrong = [m for e in expected for m in mismatches(e, by_id[e.repo_id])]
    assert wrong == []


def test_full_crawl_gives_every_record_field_by_field(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, N)
    report = _crawl(loopback_hub, tmp_path / "index.parquet")
    _check(tmp_path / "index.parquet", repos)
    assert report.listed == report.fetched == N
    assert report.errors == {"malformed_card": 1, "no_card_metadata": 1, "bad_config": 1, "gated": 1}
    assert not CrawlJournal(tmp_path / "index.parquet").path.exists()


def test_list_only_crawl_makes_no_file_request(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, N)
    _crawl(loopback_hub, tmp_path / "index.jsonl", with_config=False, with_card=False)
    _check(tmp_path / "index.jsonl", repos, with_config=False, with_card=False)
    assert loopback_hub.count("/resolve/") == 0
    assert loopback_hub.count("^/api/models$") == 1


def test_selection_filters_and_limit(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 20, bad=False)
    selection = Selection(pipeline_tag="text-classification", sort="downloads", limit=3)
    _crawl(loopback_hub, tmp_path / "index.jsonl", selection, with_config=False, with_card=False)
    text = sorted((g for g in repos if g.pipeline_tag == "text-classification"), key=lambda g: -g.downloads)
    assert [r.repo_id for r in read_index(tmp_path / "index.jsonl")] == sorted(g.repo_id for g in text[:3])


def test_recrawl_fetches_only_changed_repos(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, N)
    index = tmp_path / "index.parquet"
    _crawl(loopback_hub, index)
    changed = {i: change_repo(loopback_hub, repos[i]) for i in (0, 5, 7)}
    repos = [changed.get(i, g) for i, g in enumerate(repos)]
    loopback_hub.clear_requests()
    report = _crawl(loopback_hub, index)
    assert report.fetched == 3 and report.unchanged == N - 3
    fetched_repos = {r.path.split("/resolve/")[0].lstrip("/") for r in loopback_hub.requests if "/resolve/" in r.path}
    assert fetched_repos == {repos[i].repo_id for i in changed}
    _check(index, repos)


def test_faults_on_many_requests_still_give_correct_records(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, N)
    loopback_hub.faults.add("429", "500", "503", "truncate", match="/resolve/", probability=0.15, retry_after=0)
    loopback_hub.faults.add("500", match="^GET /api/models", times=1)
    loopback_hub.faults.add("stall", match="/resolve/", times=2, stall_s=1.5)
    _crawl(loopback_hub, tmp_path / "index.jsonl", timeout=0.5)
    _check(tmp_path / "index.jsonl", repos)
    assert sum(1 for r in loopback_hub.requests if r.fault) > 10


def test_exhausted_retries_keep_the_record_and_the_next_crawl_repairs_it(
    loopback_hub: LoopbackHub, tmp_path: Path
) -> None:
    repos = generate_repos(loopback_hub, 6, bad=False)
    target = repos[2].repo_id
    loopback_hub.faults.add("503", match=f"GET /{target}/resolve/")
    index = tmp_path / "index.jsonl"
    report = _crawl(loopback_hub, index, max_retries=2)
    record = {r.repo_id: r for r in read_index(index)}[target]
    assert report.errors == {"transient": 1}
    assert record.error is not None and record.error.startswith("transient:")
    assert record.sha == repos[2].sha and record.label_names is None  # what the listing said is kept
    loopback_hub.faults.clear()
    loopback_hub.clear_requests()
    assert _crawl(loopback_hub, index).fetched == 1
    _check(index, repos)


def test_repo_deleted_between_listing_and_fetch_is_recorded(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 6, bad=False)
    loopback_hub.faults.add("404", match=f"/{repos[1].repo_id}/resolve/")
    report = _crawl(loopback_hub, tmp_path / "index.jsonl")
    assert report.errors == {"not_found": 1}
    assert len(read_index(tmp_path / "index.jsonl")) == 6


def test_explicit_models_private_invalid_and_missing(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 3, bad=False)
    loopback_hub.add_repo(f"{DEFAULT_USER}/private", {"config.json": "{}"}, private=True)
    ids = (repos[0].repo_id, f"{DEFAULT_USER}/private", "bad--id", "nobody/missing")
    _crawl(loopback_hub, tmp_path / "index.jsonl", Selection(models=ids))
    by_id = {r.repo_id: r for r in read_index(tmp_path / "index.jsonl")}
    assert mismatches(repos[0].expected(with_config=True, with_card=True), by_id[repos[0].repo_id]) == []
    assert by_id[f"{DEFAULT_USER}/private"].error.startswith("not_found:")  # type: ignore[union-attr]
    assert by_id["bad--id"].error.startswith("invalid_id:")  # type: ignore[union-attr]
    assert by_id["nobody/missing"].error.startswith("not_found:")  # type: ignore[union-attr]


def test_gated_repo_is_read_with_a_granted_token(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 34)
    gated = repos[33]
    assert gated.bad == "gated"
    loopback_hub.repos[gated.repo_id].granted.add(DEFAULT_USER)
    _crawl(loopback_hub, tmp_path / "index.jsonl", Selection(models=(gated.repo_id,)), token=loopback_hub.token)
    (record,) = read_index(tmp_path / "index.jsonl")
    assert record.error is None and record.label_names == gated.label_names and record.gated is True


def test_listing_failure_is_one_typed_error(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    loopback_hub.faults.add("404", match="^GET /api/models")
    with pytest.raises(HubCrawlError, match="listing models failed"):
        _crawl(loopback_hub, tmp_path / "index.jsonl")


def test_token_never_appears_in_logs_errors_or_output(
    loopback_hub: LoopbackHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "hf_SECRETsecretSECRETsecret0123456789"
    loopback_hub.users[secret] = "someone"  # a valid token without access to the gated repo
    monkeypatch.setenv("HF_TOKEN", secret)
    generate_repos(loopback_hub, 40)
    # faults on the file requests (the crawler reads each file with one GET)
    loopback_hub.faults.add("500", "truncate", match="^GET .*/resolve/", probability=0.3)
    loopback_hub.faults.add("503", match="^GET .*model-00002/resolve/")
    caplog.set_level(logging.DEBUG)
    index = tmp_path / "index.jsonl"
    code = main(["-v", "crawl", "--index", str(index), "--endpoint", loopback_hub.endpoint, "--with-card",
                 "--with-config", "--backoff", "0.01", "--max-retries", "2"])  # fmt: skip
    assert code == 0
    errors = [r.error for r in read_index(index) if r.error]
    assert any(e.startswith("gated") for e in errors) and any(e.startswith("transient") for e in errors)
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err + index.read_text()
    assert secret not in text
    assert "retry" in caplog.text  # the retries were logged, without the token


def test_offline_reads_the_index_and_the_hf_cache_only(
    loopback_hub: LoopbackHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants, snapshot_download

    repos = generate_repos(loopback_hub, 4, bad=False)
    index = tmp_path / "index.jsonl"
    _crawl(loopback_hub, index, Selection(models=(repos[0].repo_id,)))
    snapshot_download(repos[1].repo_id)  # only in the HF cache
    loopback_hub.clear_requests()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    report = _crawl(loopback_hub, index, Selection(models=(repos[0].repo_id, repos[1].repo_id)))
    assert report.offline and loopback_hub.requests == []
    by_id = {r.repo_id: r for r in read_index(index)}
    cached = by_id[repos[1].repo_id]
    assert cached.sha == repos[1].sha and cached.label_names == repos[1].label_names
    assert cached.num_parameters == repos[1].num_parameters
    with pytest.raises(OfflineCacheMissError, match="HF_HUB_OFFLINE"):
        _crawl(loopback_hub, index, Selection(models=(repos[2].repo_id,)))
    with pytest.raises(OfflineCacheMissError, match="no index"):
        _crawl(loopback_hub, tmp_path / "none.jsonl")


def test_torn_journal_line_is_dropped_and_appending_resumes(tmp_path: Path) -> None:
    from hf_spider.hub.records import ModelRecord

    journal = CrawlJournal(tmp_path / "index.jsonl")
    with journal:
        journal.append(ModelRecord(repo_id="a/one", sha="1"))
    with journal.path.open("a") as f:
        f.write('{"repo_id": "a/two", "sha"')  # a kill -9 in the middle of a line
    assert list(journal.replay()) == ["a/one"]
    with journal:
        journal.append(ModelRecord(repo_id="a/three", sha="3"))
    assert list(journal.replay()) == ["a/one", "a/three"]


def test_kill_9_mid_crawl_then_resume_gives_the_same_index(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 120)
    loopback_hub.faults.add("stall", match="/resolve/", probability=0.2, stall_s=0.05)  # keep the crawl slow enough
    index = tmp_path / "index.parquet"
    journal = CrawlJournal(index).path
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "0"}
    command = [sys.executable, "-c", "from hf_spider.cli import main; raise SystemExit(main())", "crawl",
               "--index", str(index), "--endpoint", loopback_hub.endpoint, "--with-config", "--with-card",
               "--workers", "2", "--backoff", "0.01"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 20):
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not index.exists() and journal.exists(), "the crawl finished before it could be killed"
    kept = journal.read_text().count("\n")
    loopback_hub.clear_requests()
    report = _crawl(loopback_hub, index)
    assert report.fetched <= len(repos) - kept + 1
    _check(index, repos)


def test_hostile_repos_are_one_record_each_and_the_crawl_goes_on(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    repos = generate_repos(loopback_hub, 2 * len(HOSTILE_KINDS), bad=False, hostile=1)  # every kind twice
    index = tmp_path / "index.jsonl"
    report = _crawl(loopback_hub, index)
    _check(index, repos)
    kinds = Counter(kind for g in repos for kind in HOSTILE_KINDS[g.bad or ""])
    assert report.errors == dict(kinds)
    index.read_text(encoding="utf-8")  # every line is UTF-8: no lone surrogate reached the file
    assert not re.search("[\x00-\x09\x0b-\x1f\u202a-\u202e]", index.read_text(encoding="utf-8"))
    loopback_hub.clear_requests()
    assert _crawl(loopback_hub, index).fetched == sum(g.bad == "deleted" for g in repos)  # only not_found again
    _check(index, repos)


def test_a_stalled_file_costs_the_timeout_and_a_hopeless_repo_its_budget(
    loopback_hub: LoopbackHub, tmp_path: Path
) -> None:
    repos = generate_repos(loopback_hub, 4, bad=False)
    loopback_hub.faults.add("stall", match=f"GET /{repos[0].repo_id}/resolve/main/config.json", times=2, stall_s=5)
    loopback_hub.faults.add("stall", match=f"GET /{repos[1].repo_id}/resolve/", stall_s=5)  # never answers
    start = time.monotonic()
    report = _crawl(loopback_hub, tmp_path / "index.jsonl", timeout=0.3, repo_budget=2.0, max_retries=100)
    assert time.monotonic() - start < 10  # unbounded, 100 tries of the stalled repo would take 30 s or more
    by_id = {r.repo_id: r for r in read_index(tmp_path / "index.jsonl")}
    assert mismatches(repos[0].expected(with_config=True, with_card=True), by_id[repos[0].repo_id]) == []
    hopeless = by_id[repos[1].repo_id]
    assert report.errors == {"transient": 1} and "budget" in (hopeless.error or "")


def test_a_file_over_the_size_cap_is_read_no_further(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    from hf_spider.hub.sanitize import HubLimits

    (repo,) = generate_repos(loopback_hub, 1, bad=False)
    loopback_hub.update_repo(repo.repo_id, {"config.json": "{" + " " * 3000 + "}", "README.md": "# big\n" * 1000})
    limits = HubLimits(file_bytes=2048)
    _crawl(loopback_hub, tmp_path / "index.jsonl", Selection(models=(repo.repo_id,)), limits=limits)
    (record,) = read_index(tmp_path / "index.jsonl")
    assert record.card_text is not None and len(record.card_text) == 2048 and record.label_names is None
    assert record.error is not None and record.error.count("oversized:") == 2
    assert "config.json is larger than 2048 bytes" in record.error


def test_a_card_the_clients_listing_cannot_parse_costs_its_metadata_not_the_crawl(
    loopback_hub: LoopbackHub, tmp_path: Path
) -> None:
    """Card metadata with a key named like a ModelInfo argument makes the client's listing raise TypeError."""
    repos = generate_repos(loopback_hub, 6, bad=False)
    card = "---\nignore_metadata_errors: true\nlicense: mit\n---\n# listed first\n"
    loopback_hub.add_repo("aaa/keyword-card", {"README.md": card, "config.json": "{}"})  # sorts before the others
    index = tmp_path / "index.jsonl"
    report = _crawl(loopback_hub, index)
    assert report.listed == 7 and report.errors == {"malformed_card": 1}
    by_id = {r.repo_id: r for r in read_index(index)}
    assert by_id["aaa/keyword-card"].card_text == "# listed first\n"
    assert all(mismatches(g.expected(with_config=True, with_card=True), by_id[g.repo_id]) == [] for g in repos)
    assert _crawl(loopback_hub, tmp_path / "list.jsonl", with_config=False, with_card=False).listed == 7


def test_weights_digest_collapses_copies_under_unrelated_names(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    weights, other = b"\x00checkpoint-a" * 64, b"\x00checkpoint-b" * 64
    for repo_id, data in (("org/vision-net", weights), ("someone/my-model", weights), ("org/other-net", other)):
        loopback_hub.add_repo(repo_id, {"model.safetensors": data, "config.json": "{}"}, library_name="transformers")
    index = tmp_path / "index.jsonl"
    _crawl(loopback_hub, index, with_config=False, with_card=False)
    assert all("weights_sha256" not in r.extra for r in read_index(index))
    assert loopback_hub.count("/tree/") == 0  # one more request per repo only when asked
    _crawl(loopback_hub, index, with_config=False, with_card=False, with_weights_digest=True)
    by_id = {r.repo_id: r for r in read_index(index)}
    digest = {repo_id: by_id[repo_id].extra["weights_sha256"] for repo_id in by_id}
    assert digest["org/vision-net"] == digest["someone/my-model"] == [hashlib.sha256(weights).hexdigest()]
    assert digest["org/other-net"] == [hashlib.sha256(other).hexdigest()]
    collapsed = collapse_copies(list(by_id.values()))
    assert sorted((r.repo_id, aliases_of(r)) for r in collapsed) == [
        ("org/other-net", ()),
        ("org/vision-net", ("someone/my-model",)),  # created first: the original
    ]


def test_help_says_which_retries_max_retries_and_backoff_govern(capsys) -> None:
    """huggingface_hub retries each listing page itself (``list_models`` takes no setting for it): ``--max-retries 0
    --backoff 0`` still made 6 listing requests over 23 s, so the help must not claim the flags cover them."""
    with pytest.raises(SystemExit) as info:
        main(["crawl", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "retries of each model's requests" in text
    assert "huggingface_hub's own retries of a page (5, over about 23 s; not configurable)" in text


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_a_journal_that_is_no_regular_file_is_refused_before_any_request(
    loopback_hub: LoopbackHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """The journal is appended to in place: a symlink's target was cut and appended to, a FIFO hung the crawl."""
    generate_repos(loopback_hub, 2, bad=False)
    index = tmp_path / "index.jsonl"
    journal = CrawlJournal(index).path
    victim = tmp_path / "victim.jsonl"
    victim.write_text("keep me\n")
    reader = None
    if kind == "symlink":
        journal.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(journal)
        reader = os.open(journal, os.O_RDONLY | os.O_NONBLOCK)  # a crawl that opens it anyway does not block here
    else:
        journal.mkdir()
    loopback_hub.clear_requests()
    try:
        code = main(["crawl", "--index", str(index), "--endpoint", loopback_hub.endpoint, "--backoff", "0.01"])
    finally:
        if reader is not None:
            os.close(reader)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("error:") == 1 and f"crawl journal '{journal}' is a" in err and "pass another --index" in err
    assert loopback_hub.requests == [] and not index.exists()
    assert victim.read_text() == "keep me\n" and (journal.is_symlink() or journal.is_fifo() or journal.is_dir())


def test_a_failed_listing_leaves_no_journal_behind(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    loopback_hub.faults.add("404", match="^GET /api/models")
    with pytest.raises(HubCrawlError):
        _crawl(loopback_hub, tmp_path / "index.jsonl")
    assert not CrawlJournal(tmp_path / "index.jsonl").path.exists()


def test_a_journal_that_is_not_utf8_is_one_error_and_a_tail_torn_inside_a_character_is_dropped(
    tmp_path: Path,
) -> None:
    from hf_spider.hub.records import ModelRecord

    journal = CrawlJournal(tmp_path / "index.jsonl")
    journal.path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(InvalidIndexError, match=r"is not UTF-8 text .*delete it"):
        journal.replay()
    journal.path.unlink()
    with journal:
        journal.append(ModelRecord(repo_id="a/one", sha="1"))
    with journal.path.open("ab") as f:
        f.write('{"repo_id": "a/caf\u00e9'.encode()[:-1])  # a kill -9 between the two bytes of a character
    assert list(journal.replay()) == ["a/one"]


def test_a_journal_line_nested_too_deep_is_skipped_as_unreadable(tmp_path: Path) -> None:
    from hf_spider.hub.records import ModelRecord

    journal = CrawlJournal(tmp_path / "index.jsonl")
    with journal:
        journal.append(ModelRecord(repo_id="a/one", sha="1"))
    with journal.path.open("a") as f:
        f.write('{"repo_id": "a/two", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}\n")  # RecursionError
        f.write(json.dumps({"repo_id": "a/three", "downloads": float("inf")}) + "\n")  # OverflowError
    assert list(journal.replay()) == ["a/one"]


def test_hostile_listing_and_file_values_cost_their_field_not_the_index(
    loopback_hub: LoopbackHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Negative counts, a list for a task and a dict for a library were written, then every read refused the index."""
    repos = generate_repos(loopback_hub, 2, bad=False)
    vit = json.dumps({"model_type": "vit", "image_size": -224})
    bert = json.dumps({"model_type": "bert", "max_position_embeddings": -512})
    loopback_hub.add_repo(
        "evil/counts", {"config.json": vit}, pipeline_tag="image-classification", downloads=-5, likes=-3
    )
    loopback_hub.add_repo("evil/positions", {"config.json": bert}, pipeline_tag="text-classification")
    loopback_hub.add_repo("evil/task-list", {"README.md": "---\npipeline_tag: [a, b]\n---\n", "config.json": "{}"})
    loopback_hub.add_repo("evil/library-dict", {"README.md": "---\nlibrary_name: {x: 1}\n---\n", "config.json": "{}"})
    index = tmp_path / "index.jsonl"
    report = _crawl(loopback_hub, index)  # _error_counts raised TypeError (unhashable list) after the write
    assert report.errors == {"bad_value": 4}
    by_id = {r.repo_id: r for r in read_index(index)}
    counts = by_id["evil/counts"]
    assert (counts.downloads, counts.likes, counts.input_size, counts.model_type) == (None, None, None, "vit")
    assert by_id["evil/positions"].input_size is None and by_id["evil/task-list"].pipeline_tag is None
    assert by_id["evil/library-dict"].library_name is None
    assert "bad_value: downloads was dropped" in (counts.error or "")
    assert all(mismatches(g.expected(with_config=True, with_card=True), by_id[g.repo_id]) == [] for g in repos)
    assert main(["index", "stats", str(index)]) == 0
    assert "bad_value" in capsys.readouterr().out


def test_a_listed_tag_that_is_not_text_is_left_out_and_the_listing_goes_on(
    loopback_hub: LoopbackHub, tmp_path: Path
) -> None:
    repos = generate_repos(loopback_hub, 3, bad=False)
    loopback_hub.add_repo("evil/tags", {"config.json": "{}"}, tags=[5, "base_model:acme/base"])  # type: ignore[list-item]
    index = tmp_path / "index.jsonl"
    report = _crawl(loopback_hub, index, with_config=False, with_card=False)  # was: HubCrawlError, nothing written
    assert report.listed == 4 and report.errors == {}
    by_id = {r.repo_id: r for r in read_index(index)}
    assert by_id["evil/tags"].tags == ("base_model:acme/base",) and by_id["evil/tags"].base_models == ("acme/base",)
    assert all(mismatches(g.expected(with_config=False, with_card=False), by_id[g.repo_id]) == [] for g in repos)


def test_a_listed_model_nothing_foresaw_is_one_failed_record(
    loopback_hub: LoopbackHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos = generate_repos(loopback_hub, 3, bad=False)
    real = crawl_module.record_from_model_info

    def fails_on_one(info: Any, **kwargs: Any) -> Any:
        if info.id == repos[1].repo_id:
            raise KeyError("a value no parser expected")
        return real(info, **kwargs)

    monkeypatch.setattr(crawl_module, "record_from_model_info", fails_on_one)
    report = _crawl(loopback_hub, tmp_path / "index.jsonl", with_config=False, with_card=False)
    assert report.listed == 3 and report.errors == {"transient": 1}
    by_id = {r.repo_id: r for r in read_index(tmp_path / "index.jsonl")}
    assert (by_id[repos[1].repo_id].error or "").startswith("transient: unexpected KeyError")
    assert by_id[repos[0].repo_id].error is None


def test_a_rate_too_low_to_wait_for_is_refused() -> None:
    with pytest.raises(ValueError, match="more than repo_budget=120s apart"):
        Crawler(requests_per_second=1e-300)  # every model failed with OverflowError from the wait
    Crawler(requests_per_second=1 / 120)
