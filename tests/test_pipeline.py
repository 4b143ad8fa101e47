"""`pipeline("model-selection")`: both entry points agree, every input and candidate form, filters, Pareto, errors."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import hf_spider
from hf_spider.errors import InvalidDatasetError, InvalidIndexError, ScorerConfigError
from hf_spider.hub.dedup import collapse_copies
from hf_spider.hub.index import write_index
from hf_spider.hub.pool import load_default_pool
from hf_spider.hub.records import ModelRecord
from hf_spider.outputs.pareto import pareto_entries
from hf_spider.outputs.shortlist import Shortlist
from hf_spider.rankers.baselines import SizePrior
from hf_spider.ranking import default_ranker

LABELS = {"labels": ["negative", "positive"], "modality": "text"}


def default_pool():
    """The default pool as `rank` ranks it: one entry per checkpoint."""
    return collapse_copies(load_default_pool())


@pytest.fixture(scope="module")
def ranker():
    return default_ranker()


@pytest.fixture(scope="module")
def selector(ranker):
    return hf_spider.pipeline("model-selection", model=ranker)


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "reviews.csv"
    texts = [f"the film was {w} {i}" for i, w in enumerate(["great", "awful", "fine"] * 8)]
    pd.DataFrame({"text": texts, "label": ["pos", "neg", "neutral"] * 8}).to_csv(path, index=False)
    return path


def test_hf_spider_and_transformers_pipelines_give_the_same_shortlist(ranker, selector, text_csv) -> None:
    import transformers

    hf_spider.register()
    via_transformers = transformers.pipeline("model-selection", model=ranker)
    ours = selector(str(text_csv), top_k=5)
    theirs = via_transformers(str(text_csv), top_k=5)
    assert isinstance(ours, Shortlist)
    assert ours == theirs
    assert ours.task == "reviews.csv" and [e.rank for e in ours] == [1, 2, 3, 4, 5]


def test_default_model_is_the_default_ranker(selector) -> None:
    assert hf_spider.pipeline("model-selection")(LABELS, top_k=4) == selector(LABELS, top_k=4)


def test_shortlist_is_sorted_and_cut_to_top_k(selector) -> None:
    shortlist = selector(LABELS, top_k=7)
    scores = [e.score for e in shortlist]
    assert len(shortlist) == 7 and scores == sorted(scores, reverse=True)
    assert {r.repo_id for r in default_pool() if r.modality == "text"} >= set(shortlist.model_ids)


def test_top_k_zero_keeps_every_candidate_of_the_modality(selector) -> None:
    text_models = [r for r in default_pool() if r.modality in ("text", None) and not r.gated]
    assert len(selector(LABELS, top_k=0)) == len(text_models)


def test_a_list_of_tasks_gives_a_list_of_shortlists(selector) -> None:
    image = {"labels": ["cat", "dog", "bird"], "modality": "image", "name": "pets"}
    out = selector([LABELS, image], top_k=3)
    assert [s.task for s in out] == ["labels", "pets"]
    image_ids = {r.repo_id for r in default_pool() if r.modality == "image"}
    assert set(out[1].model_ids) <= image_ids


def test_filters_drop_large_models(selector) -> None:
    limit = 100_000_000
    shortlist = selector(LABELS, top_k=0, max_parameters=limit)
    assert shortlist and all(
        e.num_parameters <= limit if e.num_parameters is not None else "size unknown" in e.reasons for e in shortlist
    )
    assert len(shortlist) < len(selector(LABELS, top_k=0))


def test_a_filter_that_leaves_nothing_names_the_fix(selector) -> None:
    with pytest.raises(InvalidIndexError, match="widen the filters"):
        selector(LABELS, libraries="no-such-library", drop_unknown=True)


def test_pareto_keeps_only_undominated_models(selector) -> None:
    everything = selector(LABELS, top_k=0)
    front = selector(LABELS, top_k=0, pareto=True)
    assert front.metadata["pareto"] is True and 0 < len(front) < len(everything)
    for e in front:
        assert not any(
            o.num_parameters is not None
            and o.num_parameters <= e.num_parameters
            and o.score >= e.score
            and (o.num_parameters < e.num_parameters or o.score > e.score)
            for o in everything
        )
    assert front.model_ids == [e.model_id for e in pareto_entries(everything.entries)]


def test_candidates_from_an_index_file(selector, tmp_path) -> None:
    chosen = [r for r in default_pool() if r.modality == "text"][:6]
    path = write_index(chosen, tmp_path / "pool.jsonl")
    shortlist = selector(LABELS, candidates=str(path), top_k=0)
    assert sorted(shortlist.model_ids) == sorted(r.repo_id for r in chosen)


def test_a_folder_pool_is_read_in_place_so_its_revisions_are_not_noted(selector, tmp_path) -> None:
    """Candidates given as a folder of repos are read there, never fetched from the Hub: no note that they record no
    revision. The same records as an index file are fetched from the Hub, at its current revision: noted."""
    from hf_spider.hub.local import records_from_dir

    folder = tmp_path / "repos"
    for name in ("org/encoder-a", "org/encoder-b"):
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
        (folder / name / "README.md").write_text("---\npipeline_tag: feature-extraction\n---\nA text encoder.\n")
    in_place = selector(LABELS, candidates=str(folder), top_k=0, rerank_budget=0)
    assert sorted(in_place.model_ids) == ["org/encoder-a", "org/encoder-b"]
    assert not any("record a revision" in note for note in in_place.metadata.get("notes", []))
    index = write_index(records_from_dir(folder), tmp_path / "pool.jsonl")
    fetched = selector(LABELS, candidates=str(index), top_k=0, rerank_budget=0)
    assert any(note.startswith("none of the candidates record a revision") for note in fetched.metadata["notes"])


def test_candidates_as_repo_ids_of_the_bundled_index(selector) -> None:
    ids = [r.repo_id for r in default_pool() if r.modality == "text"][:4]
    assert sorted(selector(LABELS, candidates=ids, top_k=0).model_ids) == sorted(ids)


def test_call_options_override_init_options_without_changing_them(ranker) -> None:
    selector = hf_spider.pipeline("model-selection", model=ranker, top_k=2)
    assert len(selector(LABELS, top_k=5)) == 5
    assert len(selector(LABELS)) == 2


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"labels": ["a", "b"]}, "needs 'modality'"),
        ({"labels": ["a", "a"], "modality": "text"}, "at least 2"),
        ({"text": "x"}, "needs 'dataset', 'labels' or 'description'"),
        ("no-such-user/no-such-dataset", "could not load Hub dataset"),
    ],
)
def test_bad_tasks_raise_one_clear_line(selector, task, message) -> None:
    with pytest.raises(InvalidDatasetError, match=message):
        selector(task)


def test_a_file_that_is_not_a_dataset_is_refused(selector, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a table")
    with pytest.raises(InvalidDatasetError, match="unknown dataset file type"):
        selector(str(notes))


def test_rerank_without_samples_is_refused(selector) -> None:
    with pytest.raises(InvalidDatasetError, match="label names only"):
        selector(LABELS, rerank=3)


def test_unknown_option_and_wrong_model_are_refused(selector, ranker) -> None:
    with pytest.raises(ScorerConfigError, match="unknown model-selection option"):
        selector(LABELS, topk=3)
    with pytest.raises(ScorerConfigError, match="needs a scorer or ranker"):
        hf_spider.pipeline("model-selection", model=object())
    with pytest.raises(ScorerConfigError, match="not 'text-classification'"):
        hf_spider.pipeline("text-classification", model=ranker)


def test_shortlist_outputs_and_plots(selector) -> None:
    shortlist = selector(LABELS, top_k=5)
    assert list(shortlist.to_pandas().model_id) == shortlist.model_ids
    assert shortlist.metadata["pool_size"] == len(load_default_pool()) > shortlist.metadata["candidates"]
    assert Shortlist.from_json(shortlist.to_json()) == shortlist
    assert shortlist.to_markdown().count("\n|") == 2 + 5
    bars = shortlist.plot_scores()
    assert len(bars.axes[0].patches) == 5
    scatter = shortlist.plot_size_vs_score()
    assert scatter.axes[0].collections[0].get_offsets().shape == (5, 2)
    assert scatter.axes[0].get_xscale() == "log"


def test_ranker_by_name_and_not_together_with_a_model() -> None:
    selector = hf_spider.pipeline("model-selection", ranker="size_prior")
    shortlist = selector({"labels": ["cat", "dog"], "modality": "image"}, top_k=2)
    assert shortlist.ranker == "size_prior"
    assert shortlist[0].num_parameters >= shortlist[1].num_parameters
    with pytest.raises(ScorerConfigError, match="either model= or ranker="):
        hf_spider.pipeline("model-selection", model=SizePrior(), ranker="size_prior")


def test_transformers_pipeline_opens_a_saved_scorer_folder(tmp_path) -> None:
    import json

    import transformers

    from hf_spider.scorer.model import TransferScorer
    from hf_spider.scorer.ranker import default_scorer_path

    folder = tmp_path / "scorer"
    TransferScorer.from_pretrained(default_scorer_path()).save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "hf_spider_scorer"
    hf_spider.register()
    task = {"labels": ["cat", "dog", "bird"], "modality": "image"}
    from_transformers = transformers.pipeline("model-selection", model=str(folder))(task, top_k=5)
    from_hf_spider = hf_spider.pipeline("model-selection", model=str(folder))(task, top_k=5)
    assert from_transformers == from_hf_spider and len(from_transformers) == 5


def test_a_scorer_named_by_its_folder_ranks_with_the_task_aware_model_beside_it() -> None:
    """``model=`` a scorer folder gives the list the default ranker gives from the same folder: MTEB's encoders read
    for the task by the task-aware model saved there, not by the scorer's cold start."""
    from hf_spider.scorer.ranker import default_scorer_path

    task = {"description": "sentiment of movie reviews", "modality": "text"}
    default = hf_spider.pipeline("model-selection")(task, top_k=10)
    named = hf_spider.pipeline("model-selection", model=str(default_scorer_path()))(task, top_k=10)
    assert [e.model_id for e in named] == [e.model_id for e in default]
    assert any("linear-probe records, read for the task from its description" in r for e in named for r in e.reasons)


def test_an_image_folder_ranks_offline_alike_in_the_pipeline_and_the_cli(
    selector, tmp_path, monkeypatch, capsys
) -> None:
    """No image encoder is needed for stage one: with an empty HF cache and no network both entry points rank."""
    import numpy as np
    from huggingface_hub import constants
    from PIL import Image

    from hf_spider.cli import main

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    folder = tmp_path / "pets"
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / label / f"{i}.png")
    ours = selector(str(folder), top_k=5)
    assert main(["rank", "--dataset", str(folder), "--top-k", "5", "--format", "json"]) == 0
    cli = Shortlist.from_json(capsys.readouterr().out)
    assert ours.task == cli.task == "pets" and ours.metadata["modality"] == "image"
    assert [(e.model_id, e.score) for e in ours] == [(e.model_id, e.score) for e in cli]


def test_created_after_reads_a_day_and_notes_an_undated_pool(selector, tmp_path) -> None:

    dated = [
        ModelRecord("acme/new-encoder", pipeline_tag="text-classification", created_at="2025-02-01T00:00:00.000Z"),
        ModelRecord("acme/old-encoder", pipeline_tag="text-classification", created_at="2020-02-01T00:00:00.000Z"),
    ]
    undated = [r for r in default_pool() if r.modality == "text"][:2]
    path = write_index([*dated, *undated], tmp_path / "pool.jsonl")
    shortlist = selector(LABELS, candidates=str(path), created_after="2024-01-01", top_k=0)
    assert sorted(shortlist.model_ids) == sorted(["acme/new-encoder", *(r.repo_id for r in undated)])
    assert all("creation date unknown" in e.reasons for e in shortlist if e.model_id != "acme/new-encoder")
    with pytest.raises(ScorerConfigError, match="YYYY-MM-DD"):
        selector(LABELS, created_after="last year")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"labels": "cat,dog", "modality": "text"}, "'labels' must be a list of class names (strings), got str"),
        ({"labels": [1, 2], "modality": "text"}, "'labels' must be a list of class names"),
        ({"labels": ["cat", "cat", "dog"], "modality": "text"}, "label name(s) 'cat' given more than once"),
        ({"labels": ["a", "b"], "modality": "text", "bogus": 1}, "unknown task key(s) bogus"),
        ([], "an empty list of tasks"),
        ({"labels": ["a", "b"], "modality": "text", "dataset": "x.csv"}, "takes 'dataset' or 'labels', not both"),
        ({"description": "   ", "modality": "text"}, "the task's description is '   '; describe the task in words"),
        ({"labels": ["a", "b"], "modality": "text", "description": 5}, "the task's description is 5"),
        ({"labels": ["a", "b"], "modality": "text", "split": "test"}, "'split' chooses part of a dataset"),
        ({"description": "spam", "modality": "text", "config": "en"}, "'config' chooses part of a dataset"),
    ],
)
def test_mistyped_tasks_are_refused_not_misread(selector, task, message) -> None:
    with pytest.raises(InvalidDatasetError) as info:
        selector(task)
    assert message in str(info.value)


def test_data_options_of_a_task_without_data_are_named_as_unused(selector, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="hf_spider.pipeline"):
        selector(LABELS, label_column="intent", split="test")
    assert "split=, label_column= not used: the task is known by its label names" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_k": "3"}, "top_k must be a whole number >= 0, got '3'"),
        ({"top_k": True}, "top_k must be a whole number"),
        ({"rerank": 0}, "rerank must be a whole number >= 1"),
        ({"rerank_budget": -5}, "rerank_budget must be a number of seconds >= 0, got -5"),
        ({"rerank_budget": float("nan")}, "rerank_budget must be a number of seconds"),
        ({"pareto": "no"}, "pareto must be True or False, got 'no'"),
        ({"max_parameters": "1e8"}, "max_parameters must be a number >= 0, got '1e8'"),
        ({"licenses": [None]}, "licenses must be a string or a list of strings"),
        ({"created_after": 2024}, "created_after must be a day, 'YYYY-MM-DD' or a date, got 2024"),
        ({"models": "a/b"}, "models must be a list of repo ids (strings)"),
    ],
)
def test_mistyped_options_are_refused(selector, options, message) -> None:
    with pytest.raises(ScorerConfigError) as info:
        selector(LABELS, **options)
    assert message in str(info.value)


def test_a_streamed_dataset_is_one_task(selector) -> None:
    import datasets

    rows = {"text": [f"good {i}" if i % 2 else f"bad {i}" for i in range(12)], "label": [0, 1] * 6}
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    stream = datasets.Dataset.from_dict(rows, features=features).to_iterable_dataset()
    shortlist = selector(stream, rerank_budget=0, top_k=3)
    assert isinstance(shortlist, Shortlist) and len(shortlist) == 3


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ({"pipelinetag": "image-classification"}, "unknown Hub query key(s) pipelinetag"),
        ([ModelRecord(repo_id="a/b", pipeline_tag="text-classification"), "c/d"], "all repo ids (strings) or all"),
        ([1, 2], "all repo ids (strings) or all ModelRecords"),
    ],
)
def test_mistyped_candidates_are_refused(selector, candidates, message) -> None:
    with pytest.raises(InvalidIndexError) as info:
        selector(LABELS, candidates=candidates)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (ModelRecord(repo_id="a/b", num_parameters="1e8"), "'num_parameters' is 1e8, not a whole number"),  # type: ignore[arg-type]
        (ModelRecord(repo_id="a/b", tags="abc"), "'tags' must be a list, got str"),  # type: ignore[arg-type]
        (ModelRecord(repo_id="", num_parameters=5), "'repo_id' must be a non-empty string"),
    ],
)
def test_hand_built_records_are_held_to_the_index_rule(selector, record, message) -> None:
    good = ModelRecord(repo_id="x/y", num_parameters=5, pipeline_tag="text-classification")
    with pytest.raises(InvalidIndexError) as info:
        selector(LABELS, candidates=[record, good])
    assert message in str(info.value) and "fix the ModelRecord" in str(info.value)


def test_a_ranking_on_nan_tokens_is_refused(selector) -> None:
    from dataclasses import replace

    from hf_spider.ranking import read_task
    from hf_spider.tokens.task import TaskDescription

    tokens = read_task(TaskDescription(name="t", modality="text", label_names=("spam", "ham"))).tokens
    broken = replace(tokens, label_embeddings=np.full_like(tokens.label_embeddings, np.nan))
    with pytest.raises(ScorerConfigError, match="a score that is not a finite number"):
        selector(broken)
