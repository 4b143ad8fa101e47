"""Pushing to a model repo under write faults: one commit at most, never an empty replay; the scorer round-trips."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_spider.errors import HubPushError
from hf_spider.hub import retry
from hf_spider.hub.push import push_folder
from hf_spider.testing import DEFAULT_USER, LoopbackHub

FAST = retry.RetryPolicy(max_retries=8, backoff=0.01, max_backoff=0.05, timeout=0.5, max_retry_after=5)
REPO = f"{DEFAULT_USER}/pushed"
# The requests of a push: repo creation, the head read, YAML validation, preupload and the commit itself.
WRITES = (
    r"^(POST /api/repos/create|GET /api/models/|POST /api/validate-yaml"
    r"|POST /api/models/.+/(preupload|commit)/)"
)
FAULTS = ("429", "500", "503", "truncate", "stall_after")


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "WRITE_POLICY", FAST)


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "folder"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def upload_commits(hub: LoopbackHub, repo_id: str) -> list[dict[str, bytes]]:
    """The file sets of the repo's commits after its first (``.gitattributes``), checking none repeats its parent."""
    commits = hub.repos[repo_id].commits
    for parent, child in itertools.pairwise(commits):
        assert child.files != parent.files, f"empty commit {child.oid} ({child.summary})"
    return [c.files for c in commits[1:]]


def test_a_lost_commit_answer_is_not_replayed_as_a_second_commit(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"config.json": "{}", "weights/a.bin": "x" * 100})
    rule = loopback_hub.faults.add("truncate", match=r"^POST /api/models/.+/commit/", times=1)
    url = push_folder(folder, REPO, token=loopback_hub.token, policy=FAST)
    assert rule.hits == 1
    (files,) = upload_commits(loopback_hub, REPO)
    assert files["weights/a.bin"] == b"x" * 100
    assert url.endswith(f"/commit/{loopback_hub.repos[REPO].head.oid}")


def test_pushes_under_25_percent_write_faults_make_one_commit_per_change(
    loopback_hub: LoopbackHub, tmp_path: Path
) -> None:
    loopback_hub.faults.reseed(1)  # seed 0 draws nothing under 0.25 in its first 25 draws
    rule = loopback_hub.faults.add(*FAULTS, match=WRITES, probability=0.25, retry_after=0, stall_s=1.0)
    folder = folder_with(tmp_path, {"config.json": '{"v": 1}', "README.md": "---\nlicense: mit\n---\nhi\n"})
    for _ in range(5):  # the same content five times: one commit
        push_folder(folder, REPO, token=loopback_hub.token, policy=FAST)
    (folder / "config.json").write_text('{"v": 2}')
    push_folder(folder, REPO, token=loopback_hub.token, policy=FAST)
    commits = upload_commits(loopback_hub, REPO)
    assert [c["config.json"] for c in commits] == [b'{"v": 1}', b'{"v": 2}']
    assert rule.hits >= 5


def test_a_lasting_failure_or_no_write_access_is_one_line(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"config.json": "{}"})
    loopback_hub.faults.add("503", match=r"^POST /api/models/.+/commit/")
    with pytest.raises(HubPushError, match=r"HTTP 503 Service Unavailable: injected 503\); check the Hub") as info:
        push_folder(folder, REPO, token=loopback_hub.token, policy=FAST)
    assert "\n" not in str(info.value) and upload_commits(loopback_hub, REPO) == []
    with pytest.raises(HubPushError, match=r"may not write to 'someone/else' \(HTTP 403"):
        push_folder(folder, "someone/else", token=loopback_hub.token, policy=FAST)


def test_scorer_push_under_write_faults_loads_back_with_identical_rankings(loopback_hub: LoopbackHub, fast) -> None:
    from hf_spider.finetune_records import FinetuneRecords
    from hf_spider.hub.records import ModelRecord
    from hf_spider.scorer.model import TransferScorer
    from hf_spider.scorer.train import TrainConfig, train_scorer
    from hf_spider.tokens.build import task_tokens_from_labels
    from hf_spider.tokens.ptm import ptm_tokens
    from hf_spider.tokens.task import TaskDescription

    models = [
        ModelRecord(f"org/m{i}", pipeline_tag="image-classification", model_type="vit", num_parameters=10**6 * (i + 1))
        for i in range(6)
    ]
    labels = {"pets": ("cat", "dog"), "cars": ("car", "bus"), "fruit": ("apple", "pear")}
    tasks = {
        n: task_tokens_from_labels(TaskDescription(name=n, modality="image", label_names=ls))
        for n, ls in labels.items()
    }
    rows = [(m.repo_id, t, "image", 0.5 + 0.05 * i) for t in labels for i, m in enumerate(models)]
    records = FinetuneRecords(
        pd.DataFrame(rows, columns=["model", "target", "modality", "accuracy"]),
        pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"]),
    )
    scorer = train_scorer(records, models, tasks, config=TrainConfig(epochs=5, members=1, hidden=8))
    loopback_hub.faults.reseed(1)
    rule = loopback_hub.faults.add(*FAULTS, match=WRITES, probability=0.25, retry_after=0, stall_s=1.0)
    repo_id = f"{DEFAULT_USER}/spider-scorer"
    scorer.push_to_hub(repo_id, token=loopback_hub.token)
    scorer.push_to_hub(repo_id, token=loopback_hub.token)  # a re-run: nothing changed, nothing committed
    assert rule.hits > 0
    loopback_hub.faults.clear()
    (files,) = upload_commits(loopback_hub, repo_id)
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    remote = TransferScorer.from_pretrained(repo_id)
    tokens = ptm_tokens(models)
    for task in tasks.values():
        np.testing.assert_array_equal(remote.score_tokens(tokens, task), scorer.score_tokens(tokens, task))
