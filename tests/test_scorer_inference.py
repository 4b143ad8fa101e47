"""The torch-free scorer inference (:mod:`hf_spider.scorer.inference`) against the torch scorer it reads."""

from __future__ import annotations

import numpy as np
import pytest

from hf_spider.hub.pool import load_default_pool
from hf_spider.hub.records import ModelRecord
from hf_spider.scorer.inference import NumpyScorer, load_spider_ranker
from hf_spider.scorer.model import TransferScorer
from hf_spider.scorer.paths import default_scorer_path
from hf_spider.tokens.build import task_tokens_from_labels
from hf_spider.tokens.ptm import ptm_tokens
from hf_spider.tokens.task import TaskDescription


@pytest.fixture(scope="module")
def scorers() -> tuple[NumpyScorer, TransferScorer]:
    fast = NumpyScorer.from_folder(default_scorer_path())
    assert fast is not None
    return fast, TransferScorer.from_pretrained(str(default_scorer_path()))


@pytest.mark.parametrize(
    ("modality", "labels"), [("image", ("healthy leaf", "rust", "scab")), ("text", ("positive", "negative"))]
)
def test_numpy_inference_equals_the_torch_scorer_on_the_default_pool(scorers, modality, labels) -> None:
    fast, torch_scorer = scorers
    pool = [r for r in load_default_pool() if r.modality == modality]
    seen = next(r for r in pool if r.repo_id in fast.model_ids and r.extra["source"] == "transfergraph")
    fine_tune = ModelRecord("someone/fine-tune", pipeline_tag=seen.pipeline_tag, base_models=(seen.repo_id,))
    tokens = ptm_tokens([*pool[::7], fine_tune])
    task = task_tokens_from_labels(TaskDescription(name="t", modality=modality, label_names=labels))
    ours, reference = fast.explain_tokens(tokens, task), torch_scorer.explain_tokens(tokens, task)
    assert {"records", "lineage"} <= set(reference.evidence)  # seen models, fine-tunes of seen ones, cold starts
    np.testing.assert_allclose(ours.scores, reference.scores, atol=1e-5)
    np.testing.assert_allclose(ours.confidence, reference.confidence)
    assert ours.evidence == reference.evidence and ours.details == reference.details


def test_a_scorer_with_a_trained_content_path_is_left_to_torch(tmp_path, scorers) -> None:
    _, torch_scorer = scorers
    import torch

    with torch.no_grad():
        torch_scorer.member_modules[0].out.bias.fill_(0.1)
    try:
        torch_scorer.save_pretrained(tmp_path)
    finally:
        with torch.no_grad():
            torch_scorer.member_modules[0].out.bias.zero_()
    assert NumpyScorer.from_folder(tmp_path) is None
    assert type(load_spider_ranker(tmp_path)).__name__ == "SpiderRanker"
