"""Meta-training the scorer on sampled tasks: approximated lists and their trust, task groups, prototypes that move
the ranking, and a query dataset read through the scorer's own sample encoder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_encoders import save_tiny_vit
from test_sources import write_imagefolder

from hf_spider.finetune_records import FinetuneRecords, records_from_pairs
from hf_spider.hub.records import ModelRecord
from hf_spider.ranking import rank, read_task, samples_not_read_note, task_reading
from hf_spider.scorer.pair import hidden_tasks, task_group
from hf_spider.scorer.protocols import ProtocolRecords, TaskText, finetune_protocol_records
from hf_spider.scorer.ranker import SpiderRanker
from hf_spider.scorer.task_aware import TaskAwareConfig, fit_task_aware
from hf_spider.scorer.train import TrainConfig, protocol_records, train_scorer, training_labels
from hf_spider.tokens.build import task_tokens_from_labels
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics

FAST = TrainConfig(epochs=60, members=1, hidden=16, forest_trees=10, prior_strength=0.0, content_path=True)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _estimator_rows(rows: list[tuple[str, str, float]], estimator: str) -> list[dict[str, object]]:
    return [{"model": m, "target": t, "modality": "image", "estimator": estimator, "score": s} for m, t, s in rows]


def _measured_and_estimated() -> tuple[FinetuneRecords, dict[str, pd.Series]]:
    """Six sampled tasks of six models: the first three fine-tuned, all six scored by LogME (which follows the
    accuracy) and NCE (which says the opposite); and each task's true accuracies."""
    models = [f"m{i}" for i in range(6)]
    accuracy, good, bad, truth = [], [], [], {}
    for t in range(6):
        task = f"src:{t:04d}"
        values = [0.5 + 0.05 * i + 0.01 * ((i * 7 + t) % 3) for i in range(len(models))]
        truth[task] = pd.Series(values, index=models)
        for m, value in zip(models, values, strict=True):
            if t < 3:  # fine-tuned tasks
                accuracy.append({"model": m, "target": task, "modality": "image", "accuracy": value})
            good.append((m, task, value))  # agrees with accuracy
            bad.append((m, task, -value))  # says the opposite
    records = FinetuneRecords(
        pd.DataFrame(accuracy),
        pd.DataFrame(_estimator_rows(good, "logme") + _estimator_rows(bad, "nce")),
    )
    return records, truth


def test_estimator_only_tasks_get_lists_trusted_as_the_estimators_agree() -> None:
    """Measured tasks keep their accuracy (trust 1); an estimator that follows accuracy ranks the unmeasured tasks and
    lends them its agreement as trust; one that contradicts accuracy weighs nothing."""
    records, _ = _measured_and_estimated()
    labels, trust = training_labels(records)
    assert {t: trust[t] for t in ("src:0000", "src:0001", "src:0002")} == dict.fromkeys(
        ("src:0000", "src:0001", "src:0002"), 1.0
    )
    assert 0.8 < trust["src:0005"] <= 1.0
    approximated = labels[labels.target == "src:0005"].set_index("model").accuracy
    assert approximated.idxmax() == "m5" and approximated.idxmin() == "m0"  # LogME's order, NCE ignored


def test_estimator_only_tasks_that_cannot_be_ranked_leave_the_measured_lists_as_they_were() -> None:
    """When no estimator-only task can be ranked (the only estimator contradicts accuracy, so it weighs nothing), the
    measured tasks are the whole training lists, their accuracy still numbers: concatenating the empty frame of
    approximated rows made the column dtype object, and train-scorer failed converting it to a tensor."""
    records, _ = _measured_and_estimated()
    records = FinetuneRecords(records.accuracy, records.estimator_scores[records.estimator_scores.estimator == "nce"])
    labels, trust = training_labels(records)
    assert labels.accuracy.dtype == np.float64
    pd.testing.assert_frame_equal(labels, records.accuracy[labels.columns].reset_index(drop=True))
    assert trust == dict.fromkeys(("src:0000", "src:0001", "src:0002"), 1.0)
    read = protocol_records(records)
    assert read.scores.score.dtype == np.float64 and set(read.protocol_of().values()) == {"finetune"}


def test_a_scorer_trains_when_every_estimator_only_task_is_left_out() -> None:
    """Measured tasks and estimator-only ones whose only estimator contradicts accuracy: the estimator-only tasks are
    left out with a warning and the scorer trains on the measured ones."""
    records, models, tasks = _two_domains()
    accuracy = records.accuracy
    scores = accuracy.assign(estimator="nce", score=-accuracy.accuracy).drop(columns="accuracy")
    measured = accuracy[~accuracy.target.str.endswith(("0004", "0005"))].reset_index(drop=True)
    scorer = train_scorer(FinetuneRecords(measured, scores), models, tasks, config=FAST)
    assert scorer.train_tasks == sorted(set(measured.target))


def test_empty_records_keep_their_numbers_numbers() -> None:
    """Records of no fine-tuned pair, and a sum of protocol records with an empty part, keep float score columns (an
    empty frame of no rows has object columns, which a concat spreads to the whole column)."""
    pair = {"model": "m", "task": "t", "modality": "image", "estimators": {"logme": 1.0}, "accuracy": None}
    records = records_from_pairs([pair])
    assert records.accuracy.empty and records.accuracy.accuracy.dtype == np.float64
    assert records.estimator_scores.score.dtype == np.float64
    measured = ProtocolRecords(
        pd.DataFrame({"model": ["a", "b"], "task": ["x", "x"], "protocol": "finetune", "score": [0.5, 0.7]}),
        {"x": TaskText("x", "image")},
    )
    empty = ProtocolRecords(pd.DataFrame(columns=["model", "task", "protocol", "score"]), {})
    for summed in (measured + empty, empty + measured, measured + finetune_protocol_records(records)):
        assert summed.scores.score.dtype == np.float64 and len(summed.scores) == 2


def test_the_task_aware_model_reads_each_sampled_task_under_its_protocol() -> None:
    """Fine-tuned sampled tasks are protocol ``finetune`` with their accuracies; estimator-only ones are protocol
    ``estimator`` with the list the scorer trains on (LogME's order here); one model fits both."""
    records, truth = _measured_and_estimated()
    read = protocol_records(records)
    assert read.protocol_of() == {f"src:{t:04d}": "finetune" if t < 3 else "estimator" for t in range(6)}
    scores = read.scores.set_index(["task", "model"]).score
    for t in range(6):
        order = scores[f"src:{t:04d}"].sort_values().index.tolist()
        assert order == truth[f"src:{t:04d}"].sort_values().index.tolist()
    model = fit_task_aware(read.z_matrix(), {}, TaskAwareConfig(rank=2), protocol_of=read.protocol_of())
    assert model.protocols == ("estimator", "finetune")


def test_training_hides_the_sampled_siblings_of_a_task() -> None:
    assert task_group("digits-low:0012") == "digits-low" and task_group("glue/sst2") == "glue/sst2"
    scorer = train_scorer(*_two_domains(), config=FAST)
    hidden = hidden_tasks(scorer.train_tasks, "a1:0001", scorer.device)
    assert hidden.tolist() == [task_group(t) == "a1" for t in scorer.train_tasks] and hidden.sum() == 6
    assert not hidden_tasks(scorer.train_tasks, None, scorer.device).any()


def _two_domains() -> tuple[FinetuneRecords, list[ModelRecord], dict[str, TaskTokens]]:
    """Tasks sampled from four datasets of two data domains, all with the same label names: model "expert-a" is best
    on the datasets of domain a (a1, a2), "expert-b" on b (b1, b2). Only the samples (prototypes) tell them apart; a
    dataset's sibling in its domain is what training learns to read, its own tasks being hidden together."""
    rng = np.random.default_rng(0)
    domain = {"a": rng.normal(size=8), "b": rng.normal(size=8)}
    centre = {f"{d}{k}": domain[d] + 0.2 * rng.normal(size=8) for d in domain for k in (1, 2)}
    models = [
        ModelRecord("org/expert-a", pipeline_tag="image-classification", model_type="vit", num_parameters=10**7),
        ModelRecord("org/expert-b", pipeline_tag="image-classification", model_type="vit", num_parameters=10**7),
        ModelRecord("org/middling", pipeline_tag="image-classification", model_type="vit", num_parameters=10**7),
    ]
    description = TaskDescription(name="t", modality="image", label_names=("cat", "dog"))
    base = task_tokens_from_labels(description)
    tasks, rows = {}, []
    for dataset in centre:
        for i in range(6):
            name = f"{dataset}:{i:04d}"
            protos = (centre[dataset] + 0.1 * rng.normal(size=(2, 8))).astype(np.float32)
            tasks[name] = replace(
                base,
                description=replace(description, name=name),
                prototypes=protos,
                encoder={**base.encoder, "image": "tiny/encoder@abc"},
            )
            best = "org/expert-a" if dataset.startswith("a") else "org/expert-b"
            for m in models:
                value = 0.9 if m.repo_id == best else 0.6 if m.repo_id == "org/middling" else 0.3
                rows.append({"model": m.repo_id, "target": name, "modality": "image", "accuracy": value + 0.01 * i})
    empty = pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"])
    return FinetuneRecords(pd.DataFrame(rows), empty), models, tasks


def test_the_task_samples_change_the_ranking() -> None:
    """Two new tasks with the same label names but samples from different domains get different rankings, each
    with its domain's expert first; with the prototypes masked they get the same list."""
    records, models, tasks = _two_domains()
    scorer = train_scorer(records, models, tasks, config=FAST)
    assert scorer.sample_encoders == {"image": "tiny/encoder"}
    noise = np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32) * 0.1
    new = {  # tasks no training task is: prototypes near their domain's datasets, fresh noise
        d: replace(
            tasks[f"{d}1:0000"],
            description=replace(tasks[f"{d}1:0000"].description, name=f"new-{d}"),
            prototypes=np.mean([tasks[f"{d}{k}:0003"].prototypes for k in (1, 2)], axis=0) + noise,
        )
        for d in ("a", "b")
    }
    ids = [m.repo_id for m in models]
    best = {d: ids[int(np.argmax(scorer.score(new[d], models)))] for d in new}
    assert best == {"a": "org/expert-a", "b": "org/expert-b"}
    masked = [scorer.score(replace(new[d], prototypes=None), models) for d in new]
    np.testing.assert_allclose(masked[0], masked[1], atol=1e-6)


def test_a_scorer_trained_with_prototypes_reads_a_datasets_samples(tmp_path: Path) -> None:
    """``read_task`` encodes the samples with the scorer's own encoder; the default scorer reads label names only
    and the shortlist says stage one did not read the samples."""
    encoder = str(save_tiny_vit(tmp_path / "vit"))
    folder = write_imagefolder(tmp_path / "images", {"cat": 6, "dog": 6})
    description = TaskDescription(name="t", modality="image", label_names=("cat", "dog"))
    records, models, tasks = _two_domains()
    tasks = {
        name: replace(t, prototypes=np.zeros((2, 32), np.float32) + i, encoder={"image": f"{encoder}@local"})
        for i, (name, t) in enumerate(tasks.items())
    }
    ranker = SpiderRanker(scorer=train_scorer(records, models, tasks, config=replace(FAST, content_path=False)))
    read = read_task(folder, **task_reading(ranker))
    assert read.tokens.prototypes is not None and read.tokens.prototypes.shape == (2, 32)
    assert "samples_not_read" not in read.tokens.sampling
    plain = read_task(folder)
    assert plain.tokens.prototypes is None and plain.tokens.sampling["samples_not_read"]
    shortlist = rank(plain.tokens, models, ranker=ranker)
    assert samples_not_read_note() in shortlist.metadata["notes"]
    assert samples_not_read_note().startswith("stage one did not read the dataset's samples: ")
    assert task_statistics(description).shape == read.tokens.statistics.shape
    assert torch.isfinite(torch.from_numpy(ranker.score(read.tokens, models))).all()
