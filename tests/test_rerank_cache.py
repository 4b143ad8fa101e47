"""The feature cache (one forward pass per revision and sample set) and failures that stay with their candidate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_rerank import options, pool, save_bert, stage_one, text_task  # noqa: F401 (fixtures)

from hf_spider.rerank import distributed
from hf_spider.rerank.combine import rerank_shortlist
from hf_spider.rerank.distributed import rerank_candidates
from hf_spider.rerank.samples import load_samples


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty feature cache for this test (``HF_SPIDER_CACHE`` is read through ``constants.CACHE_DIR``)."""
    from hf_spider import constants

    monkeypatch.setattr(constants, "CACHE_DIR", tmp_path / "hf-spider-cache")
    return tmp_path / "hf-spider-cache" / "features"


@pytest.fixture
def forward_passes(monkeypatch) -> list[str]:
    """The model id of every forward pass run (``run_candidate`` calls), in order."""
    calls: list[str] = []
    real = distributed.run_candidate

    def counting(candidate, prepared):
        calls.append(candidate.model_id)
        return real(candidate, prepared)

    monkeypatch.setattr(distributed, "run_candidate", counting)
    return calls


def test_a_second_rerank_with_other_k_and_estimators_runs_no_forward_pass(
    pool,  # noqa: F811
    text_task,  # noqa: F811
    cache_dir,
    forward_passes,
) -> None:
    root, records = pool
    shortlist = stage_one(records[:4])
    first = rerank_shortlist(shortlist, text_task, records, k=4, per_class=3, options=options(root))
    assert sorted(forward_passes) == sorted(shortlist.model_ids[:4]) and first.metadata["rerank"]["cached"] == 0
    forward_passes.clear()
    again = rerank_shortlist(
        shortlist, text_task, records, k=3, per_class=3, estimators=("logme", "nce"), options=options(root)
    )
    assert forward_passes == [] and again.metadata["rerank"]["cached"] == 3
    logme = {e.model_id: e.estimator_scores["logme"] for e in first if e.estimator_scores}
    assert all(e.estimator_scores["logme"] == logme[e.model_id] for e in again if e.estimator_scores)
    heads = {r.repo_id for r in records[:4] if r.pipeline_tag == "text-classification"}
    assert {e.model_id for e in again if "nce" in e.estimator_scores} == heads & set(shortlist.model_ids[:3])


def test_entries_are_safetensors_with_a_sidecar_and_no_temporary_file_left(
    pool,  # noqa: F811
    text_task,  # noqa: F811
    cache_dir,
) -> None:
    from safetensors.numpy import load_file

    root, records = pool
    samples = load_samples(text_task, per_class=2)
    rerank_candidates(records[1:2], samples, options=options(root))  # bert-1 has a head: probabilities too
    files = sorted(p.name for p in cache_dir.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")
    arrays = load_file(str(cache_dir / files[1]))
    assert arrays["features"].shape[0] == len(samples.labels) == arrays["probabilities"].shape[0]
    sidecar = json.loads((cache_dir / files[0]).read_text())
    assert sidecar["model"] == "tiny/bert-1" and sidecar["sampling"]["per_class"] == 2


def test_other_samples_or_an_edited_candidate_miss_the_cache(
    tmp_path,
    text_task,  # noqa: F811
    cache_dir,
    forward_passes,
) -> None:
    record = save_bert(tmp_path, "tiny/edited", seed=3)
    opts = options(tmp_path)
    rerank_candidates([record], load_samples(text_task, per_class=2), options=opts)
    rerank_candidates([record], load_samples(text_task, per_class=2, seed=1), options=opts)  # another draw
    save_bert(tmp_path, "tiny/edited-2", seed=4)  # an unrelated folder changes nothing
    rerank_candidates([record], load_samples(text_task, per_class=2), options=opts)
    assert forward_passes == ["tiny/edited", "tiny/edited"]
    (tmp_path / "tiny/edited/model.safetensors").write_bytes(
        (tmp_path / "tiny/edited-2/model.safetensors").read_bytes()
    )
    rerank_candidates([record], load_samples(text_task, per_class=2), options=opts)
    assert forward_passes == ["tiny/edited"] * 3


def test_an_out_of_memory_error_at_the_device_move_fails_that_candidate_only(
    pool,  # noqa: F811
    text_task,  # noqa: F811
    cache_dir,
    monkeypatch,
) -> None:
    import torch

    root, records = pool
    real_to = torch.nn.Module.to

    def to(self, *args, **kwargs):
        if getattr(getattr(self, "config", None), "_name_or_path", "").endswith("bert-2"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    shortlist = stage_one(records[:4])
    out = rerank_shortlist(shortlist, text_task, records, k=4, per_class=3, options=options(root))
    failed = [e for e in out if e.error]
    assert [e.model_id for e in failed] == ["tiny/bert-2"] and "out of memory" in failed[0].error
    assert out.metadata["rerank"]["reranked"] == 3 and all(np.isfinite(e.estimator_scores["logme"]) for e in out[:3])


def test_any_error_of_one_candidate_is_its_reason_and_the_run_goes_on(
    pool,  # noqa: F811
    text_task,  # noqa: F811
    cache_dir,
    monkeypatch,
) -> None:
    root, records = pool
    real = distributed.run_candidate

    def flaky(candidate, prepared):
        if candidate.model_id == "tiny/bert-0":
            raise KeyError("no tensor 'pooler.dense.weight'")
        return real(candidate, prepared)

    monkeypatch.setattr(distributed, "run_candidate", flaky)
    results = rerank_candidates(records[:3], load_samples(text_task, per_class=2), options=options(root))
    assert results[0].error == "KeyError: \"no tensor 'pooler.dense.weight'\""
    assert [r.error for r in results[1:]] == [None, None]


def test_a_spent_budget_starts_no_candidate(
    pool,  # noqa: F811
    text_task,  # noqa: F811
    cache_dir,
    forward_passes,
) -> None:
    import time

    from hf_spider.rerank.distributed import Deadline

    root, records = pool
    samples = load_samples(text_task, per_class=2)
    results = rerank_candidates(records[:2], samples, options=options(root), deadline=Deadline(time.time() - 1))
    assert forward_passes == [] and all(r.skipped and r.error is None for r in results)
    expected_too_long = Deadline(time.time() + 3600, expected_seconds=7200)
    assert all(
        r.skipped for r in rerank_candidates(records[:2], samples, options=options(root), deadline=expected_too_long)
    )
