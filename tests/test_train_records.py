"""``hf-spider train-scorer --records``: what the scorer cannot train on is said, never dropped unsaid; and the
factorisation's masked Gram matrices equal their definition."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_spider.finetune_records import FinetuneRecords
from hf_spider.hub.index import write_index
from hf_spider.hub.records import ModelRecord
from hf_spider.hub.sanitize import some_of
from hf_spider.rankers.fennec import masked_grams
from hf_spider.scorer.model import TransferScorer
from hf_spider.scorer.train import left_out_notes, training_labels

MODELS = [
    ModelRecord(f"org/model-{i}", pipeline_tag="image-classification", model_type="vit", num_parameters=10**7 * (i + 1))
    for i in range(6)
]
FAST = ["--epochs", "2", "--members", "1"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _rows(target: str, models: list[str], *, labels: str = "", base: float = 0.5) -> list[dict[str, object]]:
    return [
        {"model": m, "target": target, "modality": "image", "accuracy": round(base + 0.05 * i, 2), "labels": labels}
        for i, m in enumerate(models)
    ]


def _train(tmp_path: Path, rows: list[dict[str, object]]) -> int:
    from hf_spider.cli import main

    pd.DataFrame(rows).to_csv(tmp_path / "records.csv", index=False)
    write_index(MODELS, tmp_path / "index.jsonl")
    argv = ["train-scorer", "--records", str(tmp_path / "records.csv"), "--candidates", str(tmp_path / "index.jsonl")]
    return main([*argv, "--output", str(tmp_path / "out"), *FAST])


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_every_kind_of_record_left_out_is_said_with_its_count(tmp_path: Path, caplog) -> None:
    """Unknown models, targets without label names, targets with one model, repeated pairs and a target named like
    an MTEB task: one warning line each, with its count and the names; the rest trains."""
    ids = [m.repo_id for m in MODELS]
    rows = [
        *_rows("cifar10", [*ids, "ghost/a", "ghost/b"]),  # a target whose label names the package knows
        *_rows("team-target", [*ids, "ghost/a"], labels="cat|dog|horse"),
        *_rows("Banking77Classification", ids, labels="card|loan"),  # an MTEB task's name
        *_rows("mystery", ids[:4]),  # no labels column, no known label names
        *_rows("lonely", ids[:1], labels="a|b"),  # one model: no order to learn
        {"model": ids[1], "target": "cifar10", "modality": "image", "accuracy": 0.9},  # a better run of a pair
        {"model": ids[2], "target": "team-target", "modality": "image", "accuracy": 0.6},  # a copy of a run
    ]
    with caplog.at_level(logging.WARNING):
        assert _train(tmp_path, rows) == 0
    notes = _warnings(caplog)
    assert all("\n" not in note for note in notes)
    expected = [
        "records.csv: kept the best run of 2 (model, target) pair(s) given more than once (2 row(s) dropped): "
        "'org/model-1' on 'cifar10' (0.9 kept, 0.55 dropped), 'org/model-2' on 'team-target' (0.6 kept, 0.6 dropped)",
        "2 model(s) are in no candidate record, so their 3 record(s) are left out of the scorer's training: "
        "'ghost/a', 'ghost/b'",
        "1 target(s) have no task tokens (label names read as image or text), so they are left out of the scorer's "
        "training: 'mystery'",
        "1 target(s) have fewer than two models among the candidates, no order to learn, so they are left out of the "
        "scorer's training: 'lonely'",
        "1 target(s) of the records are named like an MTEB task, whose records the task-aware model keeps instead: "
        "'Banking77Classification'",
    ]
    assert len(notes) == len(expected)
    for start, note in zip(expected, notes, strict=True):
        assert note.startswith(start), note
    trained = TransferScorer.from_pretrained(tmp_path / "out")
    assert trained.train_tasks == ["Banking77Classification", "cifar10", "team-target"]
    assert trained.model_ids == sorted(m.repo_id for m in MODELS)


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        (_rows("cifar10", ["ghost/a", "ghost/b", "ghost/c"]), "3 model(s) are in no candidate record"),
        (_rows("mystery", [m.repo_id for m in MODELS]), "1 target(s) have no task tokens"),
    ],
    ids=["unknown models", "no label names"],
)
def test_nothing_left_to_train_on_is_one_line_that_says_why(tmp_path: Path, capsys, caplog, rows, reason) -> None:
    with caplog.at_level(logging.WARNING):
        assert _train(tmp_path, rows) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hf-spider train-scorer: error: no training target"), err
    assert reason in err
    assert not _warnings(caplog)  # the reasons are the error, not lines before it
    assert not (tmp_path / "out" / "config.json").exists()


def test_estimator_only_tasks_without_a_measured_task_to_trust_are_said() -> None:
    """build-records records of a modality with no fine-tuned task: their estimator-ranked lists cannot be trusted
    against anything, so they are left out, and said to be."""
    estimator = pd.DataFrame(
        [
            {"model": m, "target": f"src:{t}", "modality": "text", "estimator": "logme", "score": float(i)}
            for t in range(3)
            for i, m in enumerate(["m0", "m1", "m2"])
        ]
    )
    accuracy = pd.DataFrame(
        [
            {"model": m, "target": "img", "modality": "image", "accuracy": 0.5 + 0.1 * i}
            for i, m in enumerate(["m0", "m1"])
        ]
    )
    records = FinetuneRecords(accuracy, estimator)
    labels, _ = training_labels(records)
    notes = left_out_notes(records, labels, {"m0", "m1", "m2"}, {"img": None})  # type: ignore[dict-item]
    assert notes == [
        "3 task(s) with estimator values only are left out of the scorer's training: 'src:0', 'src:1', 'src:2'; no "
        "task of their modality has measured accuracy that their estimators agree with (fine-tune some: hf-spider "
        "build-records --finetune-tasks)"
    ]


def test_names_in_a_note_stay_on_one_line() -> None:
    assert some_of(["a\nb", "c\x1b[2J", "d", "e"]) == "'a\\u000ab', 'c\\u001b[2J', 'd' and 1 more"


def test_masked_grams_are_the_sum_of_the_selected_outer_products() -> None:
    """The factorisation's Gram matrices, against their definition written as a loop."""
    rng = np.random.default_rng(0)
    mask = (rng.random((7, 11)) < 0.4).astype(np.float64)
    features = rng.standard_normal((11, 5))
    expected = np.zeros((7, 5, 5))
    for r in range(7):
        for c in range(11):
            if mask[r, c]:
                expected[r] += np.outer(features[c], features[c])
    np.testing.assert_allclose(masked_grams(mask, features), expected, rtol=1e-12, atol=1e-12)
