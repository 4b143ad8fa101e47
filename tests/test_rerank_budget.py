"""`hf-spider rank --dataset` re-ranks by itself within its budget; offline without weights it says how to get them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_rerank import (  # noqa: F401 (fixtures)
    image_task,
    save_bert,
    save_sentence_transformer,
    save_timm,
    save_vit,
    text_task,
)
from test_rerank_cache import cache_dir, forward_passes  # noqa: F401 (fixtures)

from hf_spider.cli import main
from hf_spider.ranking import samples_not_read_note


@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> Path:
    """A folder of tiny real models of every layout stage two loads: transformers, timm, sentence-transformers."""
    root = tmp_path_factory.mktemp("models")
    save_bert(root, "tiny/bert-a", seed=1)
    save_bert(root, "tiny/bert-b", seed=2, head=True)
    save_sentence_transformer(root, "tiny/st-a", seed=3)  # also writes tiny/st-a-base, a plain BERT
    save_vit(root, "tiny/vit-a", seed=4)
    save_timm(root, "tiny/timm-a", seed=5)
    return root


@pytest.fixture(autouse=True)
def _empty_feature_cache(cache_dir) -> None:  # noqa: F811
    """Every test here starts from an empty feature cache, so its forward passes are its own."""


def _rank(capsys, *argv: str) -> dict:
    assert main(["rank", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("task", "models"),
    [
        ("text_task", {"tiny/bert-a", "tiny/bert-b", "tiny/st-a", "tiny/st-a-base"}),
        ("image_task", {"tiny/vit-a", "tiny/timm-a"}),
    ],
)
def test_rank_with_a_dataset_reranks_by_itself_and_a_second_run_reads_the_cache(
    request,
    capsys,
    candidates,
    forward_passes,  # noqa: F811
    task,
    models,
) -> None:
    dataset = str(request.getfixturevalue(task))
    first = _rank(capsys, "--dataset", dataset, "--candidates", str(candidates), "--top-k", "0")
    meta = first["metadata"]["rerank"]
    assert {e["model_id"] for e in first["entries"]} == models and meta["reranked"] == len(models)
    assert meta["failed"] == 0 and meta["budget_seconds"] == 60.0 and meta["cached"] == 0
    assert set(forward_passes) == models  # successive halving: some ran on more samples in a later round
    assert all(e["estimator_scores"] for e in first["entries"])
    assert samples_not_read_note(len(models)) in first["metadata"]["notes"]  # stage one read label names, two samples
    assert not any("record a revision" in note for note in first["metadata"]["notes"])  # read in place, not fetched
    passes = len(forward_passes)
    forward_passes.clear()
    second = _rank(capsys, "--dataset", dataset, "--candidates", str(candidates), "--top-k", "0")
    assert forward_passes == [] and second["metadata"]["rerank"]["cached"] == passes
    assert [e["model_id"] for e in second["entries"]] == [e["model_id"] for e in first["entries"]]


def test_no_rerank_and_label_names_give_stage_one(capsys, candidates, text_task, forward_passes) -> None:  # noqa: F811
    plain = _rank(capsys, "--dataset", str(text_task), "--candidates", str(candidates), "--no-rerank")
    labels = _rank(capsys, "--labels", "neg,pos", "--modality", "text", "--candidates", str(candidates))
    assert forward_passes == [] and "rerank" not in plain["metadata"] and "rerank" not in labels["metadata"]
    assert samples_not_read_note() in plain["metadata"]["notes"]  # no sample read, by either stage
    assert not any("did not read" in note for note in labels["metadata"].get("notes", []))  # no samples to read


def test_offline_without_cached_weights_stage_one_names_the_download_command(
    capsys,
    tmp_path,
    text_task,  # noqa: F811
    forward_passes,  # noqa: F811
) -> None:
    from hf_spider.hub.index import write_index
    from hf_spider.hub.records import ModelRecord

    sha = "a" * 40
    index = write_index(
        [ModelRecord("org/not-cached", sha=sha, pipeline_tag="text-classification")], tmp_path / "index.jsonl"
    )
    out = _rank(capsys, "--dataset", str(text_task), "--candidates", str(index))
    assert forward_passes == [] and "rerank" not in out["metadata"]
    assert f"`hf download org/not-cached --revision {sha}`" in out["metadata"]["notes"][-1]


def test_a_budget_that_is_not_positive_is_a_one_line_error(capsys, candidates, text_task) -> None:  # noqa: F811
    with pytest.raises(SystemExit) as exit_info:
        main(["rank", "--dataset", str(text_task), "--candidates", str(candidates), "--rerank-budget", "0"])
    assert exit_info.value.code == 2 and "--rerank-budget: must be > 0, got 0" in capsys.readouterr().err


def test_the_pipeline_reranks_the_same_way_and_rerank_budget_zero_turns_it_off(
    candidates,
    text_task,  # noqa: F811
    forward_passes,  # noqa: F811
) -> None:
    import hf_spider

    selector = hf_spider.pipeline("model-selection")
    reranked = selector(str(text_task), candidates=str(candidates), top_k=0)
    assert reranked.metadata["rerank"]["reranked"] == 4 and reranked.metadata["rerank"]["budget_seconds"] == 60.0
    forward_passes.clear()
    plain = selector(str(text_task), candidates=str(candidates), top_k=0, rerank_budget=0)
    assert "rerank" not in plain.metadata and forward_passes == []


def test_the_pipeline_reranks_exactly_k_from_a_candidate_folder(candidates, text_task) -> None:  # noqa: F811
    """``rerank=k`` reads the folder's weights, as the budget path does (it asked to download them from the Hub)."""
    import hf_spider

    shortlist = hf_spider.pipeline("model-selection")(str(text_task), candidates=str(candidates), top_k=0, rerank=2)
    assert shortlist.metadata["rerank"]["reranked"] == 2 and shortlist.metadata["rerank"]["failed"] == 0


def test_failed_candidates_are_listed_below_those_the_budget_path_never_ran(tmp_path, text_task) -> None:  # noqa: F811
    from dataclasses import replace

    from hf_spider.outputs.shortlist import Shortlist
    from hf_spider.rerank.budget import rerank_within_budget
    from hf_spider.rerank.options import ForwardOptions

    broken = [save_bert(tmp_path, f"tiny/broken-{i}", seed=i) for i in range(2)]
    for record in broken:
        (tmp_path / record.repo_id / "model.safetensors").write_bytes(b"not a safetensors file")
    good = [save_bert(tmp_path, f"tiny/good-{i}", seed=i) for i in range(3)]
    ids = [*(r.repo_id for r in broken), *(r.repo_id for r in good), "tiny/unread"]
    shortlist = Shortlist.from_scores({m: 1.0 - i / 10 for i, m in enumerate(ids)}, task="reviews", ranker="test")
    unread = "bad_config: config.json is not valid JSON"  # stage one could not read it
    shortlist = shortlist.with_entries([replace(e, error=unread if e.model_id == ids[-1] else None) for e in shortlist])
    options = ForwardOptions(local_dir=str(tmp_path), batch_size=8)
    out = rerank_within_budget(shortlist, text_task, [*broken, *good], k=3, options=options)
    # good-0 ran; good-1 and good-2 never ran (beyond k) and were not shown to be broken, so they stay above both
    good_ids, broken_ids = [r.repo_id for r in good], [r.repo_id for r in broken]
    assert out.model_ids == [*good_ids, *broken_ids, "tiny/unread"]
    assert [bool(e.error) for e in out] == [False, False, False, True, True, True]
    assert out.metadata["rerank"]["failed"] == 2 and out.metadata["rerank"]["reranked"] == 1
