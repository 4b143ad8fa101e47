"""Candidate selection and filters shared by every entry point, and the baseline rankers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from hf_spider.errors import InvalidIndexError, UnknownCandidateError
from hf_spider.finetune_records import load_bundled_records
from hf_spider.hub.records import ModelRecord
from hf_spider.rankers.baselines import CollaborativePrior, SizePrior
from hf_spider.ranking import CandidateFilter, rank, select_candidates
from hf_spider.tokens.task import TaskDescription, TaskTokens

POOL = [
    ModelRecord(repo_id="a/small", pipeline_tag="image-classification", num_parameters=10, license="mit"),
    ModelRecord(repo_id="a/big", pipeline_tag="image-classification", num_parameters=1000, license="apache-2.0"),
    ModelRecord(repo_id="a/gated", pipeline_tag="image-classification", num_parameters=5, gated=True),
    ModelRecord(repo_id="a/text", pipeline_tag="text-classification", num_parameters=50),
    ModelRecord(repo_id="a/unknown"),
]


def ids(records) -> list[str]:
    return [r.repo_id for r in records]


def test_modality_and_gated_filtering() -> None:
    assert ids(select_candidates(POOL, modality="image", candidate_filter=CandidateFilter())) == [
        "a/small",
        "a/big",
        "a/unknown",
    ]
    with_gated = select_candidates(POOL, modality="image", candidate_filter=CandidateFilter(include_gated=True))
    assert "a/gated" in ids(with_gated)


def test_size_and_license_filters_keep_and_note_what_they_cannot_check() -> None:
    strict = CandidateFilter(max_parameters=100, licenses=frozenset({"MIT"}))
    kept = select_candidates(POOL, modality="image", candidate_filter=strict)
    assert ids(kept) == ["a/small", "a/unknown"]  # the license compares case-insensitively; unknowns are kept
    assert strict.notes(POOL[0]) == () and strict.notes(POOL[-1]) == ("size unknown", "license unknown")
    tokens = TaskTokens(TaskDescription(name="t", modality="image", label_names=("x", "y")))
    shortlist = rank(tokens, kept, ranker=SizePrior(), candidate_filter=strict)
    assert {e.model_id: e.reasons for e in shortlist} == {
        "a/small": (),
        "a/unknown": ("size unknown", "license unknown"),
    }


def test_drop_unknown_drops_what_a_filter_cannot_check() -> None:
    strict = CandidateFilter(max_parameters=100, licenses=frozenset({"mit"}), drop_unknown=True)
    assert ids(select_candidates(POOL, modality="image", candidate_filter=strict)) == ["a/small"]
    # a filter that is not active asks nothing: an unknown license does not matter without --license
    assert ids(select_candidates(POOL, modality="image", candidate_filter=CandidateFilter(drop_unknown=True))) == [
        "a/small",
        "a/big",
        "a/unknown",
    ]


def test_created_after_cuts_by_creation_day_and_notes_what_it_cannot_date() -> None:
    pool = [
        ModelRecord("a/new", pipeline_tag="image-classification", created_at="2024-03-01T10:00:00.000Z"),
        ModelRecord(
            "a/day", pipeline_tag="image-classification", created_at="2024-01-01T00:00:00.000Z"
        ),  # that day counts
        ModelRecord("a/old", pipeline_tag="image-classification", created_at="2021-06-30T23:59:59.000Z"),
        ModelRecord("a/undated", pipeline_tag="image-classification"),
        ModelRecord("a/garbled", pipeline_tag="image-classification", created_at="next tuesday"),  # untrusted Hub text
    ]
    cut = CandidateFilter(created_after=date(2024, 1, 1))
    assert ids(select_candidates(pool, modality="image", candidate_filter=cut)) == [
        "a/new",
        "a/day",
        "a/undated",
        "a/garbled",
    ]
    assert cut.notes(pool[3]) == cut.notes(pool[4]) == ("creation date unknown",) and cut.notes(pool[0]) == ()
    strict = CandidateFilter(created_after=date(2024, 1, 1), drop_unknown=True)
    assert ids(select_candidates(pool, modality="image", candidate_filter=strict)) == ["a/new", "a/day"]


def test_unknown_id_is_named() -> None:
    with pytest.raises(UnknownCandidateError, match="a/nope"):
        select_candidates(POOL, modality="image", model_ids=["a/small", "a/nope"])


def test_empty_pool_after_filters_is_an_error() -> None:
    with pytest.raises(InvalidIndexError, match="widen the filters"):
        select_candidates(
            POOL,
            modality="image",
            candidate_filter=CandidateFilter(licenses=frozenset({"gpl-3.0"}), drop_unknown=True),
        )


@pytest.mark.parametrize(
    ("repo_id", "tags", "flagged"),
    [
        ("lysandre/tiny-vit-random", None, True),
        ("nateraw/test_model_a", None, True),
        ("someone/Test-Model", None, True),
        ("AnonymousSub/dummy_2", None, True),
        ("acme/vit", ("testing",), True),
        ("google/vit-base-patch16-224", None, False),
        ("facebook/deit-tiny-patch16-224", None, False),  # tiny is a real size, not a test
        ("acme/latest-contest-winner", None, False),  # words, not substrings
        ("acme/vit", ("dataset:mnist_test",), False),  # whole tags only
        ("test/vit-base", None, False),  # the owner's name says nothing of the weights
    ],
)
def test_test_and_random_weight_repos_are_noted_or_dropped(repo_id, tags, flagged) -> None:
    record = ModelRecord(repo_id=repo_id, pipeline_tag="image-classification", num_parameters=10, tags=tags)
    assert ("looks like a test or random-weight repo" in CandidateFilter().notes(record)) == flagged
    assert CandidateFilter(drop_test_repos=True).keep(record) != flagged
    assert CandidateFilter().keep(record)


def test_rank_carries_the_hub_facts_and_what_it_read() -> None:
    pool = [
        ModelRecord(
            repo_id="a/known",
            pipeline_tag="image-classification",
            num_parameters=10,
            license="mit",
            downloads=1234,
            last_modified="2024-05-01T10:00:00.000Z",
        ),
        ModelRecord(repo_id="a/bare", pipeline_tag="image-classification", num_parameters=5),
    ]
    tokens = TaskTokens(TaskDescription(name="t", modality="image", label_names=("x", "y")))
    shortlist = rank(tokens, pool, ranker=SizePrior())
    assert [(e.license, e.downloads, e.last_modified) for e in shortlist] == [
        ("mit", 1234, "2024-05-01T10:00:00.000Z"),
        (None, None, None),
    ]
    assert shortlist.metadata["read"] == "label names"


def test_rank_says_which_cards_list_the_tasks_dataset_as_training_data() -> None:
    def model(repo_id: str, *datasets: str) -> ModelRecord:
        return ModelRecord(repo_id=repo_id, pipeline_tag="text-classification", num_parameters=1, datasets=datasets)

    pool = [
        model("a/emotion-ft", "dair-ai/emotion"),
        model("b/short-name", "Emotion"),
        model("c/other-emotion", "tweet_eval/emotion"),  # another dataset of the same last name
        model("d/glue", "glue/cola"),
        model("e/none"),
    ]

    def said(source: str, local: bool = False) -> dict[str, list[str]]:
        task = TaskDescription(name="t", modality="text", label_names=("x", "y"), source=source, local=local)
        shortlist = rank(TaskTokens(task), pool, ranker=SizePrior())
        return {e.model_id: [r for r in e.reasons if "card lists" in r] for e in shortlist if e.reasons}

    assert said("dair-ai/emotion") == {
        "a/emotion-ft": ["its card lists dair-ai/emotion as training data"],
        "b/short-name": ["its card lists Emotion as training data"],
    }
    assert said("nyu-mll/glue:cola") == {"d/glue": ["its card lists glue/cola as training data"]}
    assert said("nyu-mll/glue:sst2") == {}
    assert said("emotion", local=True) == {}  # a local folder of that name is the user's own data


def test_size_prior_ranks_by_size() -> None:
    tokens = TaskTokens(TaskDescription(name="t", modality="image", label_names=("x", "y")))
    shortlist = rank(tokens, POOL[:2], ranker=SizePrior())
    assert shortlist.model_ids == ["a/big", "a/small"] and shortlist[0].num_parameters == 1000


def test_collaborative_prior_ignores_the_target_itself() -> None:
    records = load_bundled_records()
    models = [ModelRecord(repo_id=m, pipeline_tag="image-classification") for m in ("google/vit-base-patch16-224",)]
    tokens = lambda name: TaskTokens(TaskDescription(name=name, modality="image", label_names=("x", "y")))  # noqa: E731
    prior = CollaborativePrior(records)
    frame = records.accuracy
    # Making the model the best on one target changes its prior on other targets but not on that target.
    boosted = frame.copy()
    boosted.loc[(boosted.model == models[0].repo_id) & (boosted.target == "dtd"), "accuracy"] = 1.0
    boosted_prior = CollaborativePrior(type(records)(boosted, records.estimator_scores))
    assert np.allclose(prior.score(tokens("dtd"), models), boosted_prior.score(tokens("dtd"), models))
    assert not np.allclose(prior.score(tokens("pets"), models), boosted_prior.score(tokens("pets"), models))


def test_collab_prior_size_fallback_puts_seen_and_unseen_models_on_one_scale() -> None:
    import pandas as pd

    from hf_spider.finetune_records import FinetuneRecords
    from hf_spider.rankers.baselines import CollabPriorSizeFallback

    sizes = {"seen/a": 10, "seen/b": 1_000, "seen/c": 100_000}
    rows = [("seen/a", "t1", 0.9), ("seen/b", "t1", 0.5), ("seen/c", "t1", 0.1)]
    records = FinetuneRecords(
        pd.DataFrame(rows, columns=["model", "target", "accuracy"]).assign(modality="image"),
        pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"]),
    )
    known = [ModelRecord(repo_id=m, num_parameters=n) for m, n in sizes.items()]
    unseen = [
        ModelRecord(repo_id="new/huge", num_parameters=10**7),
        ModelRecord(repo_id="new/mid", num_parameters=1_000),
        ModelRecord(repo_id="new/unsized"),
    ]
    ranker = CollabPriorSizeFallback().fit(records, known, {})
    task = TaskTokens(TaskDescription(name="target", modality="image", label_names=("x", "y")))
    scores = dict(zip([m.repo_id for m in known + unseen], ranker.score(task, known + unseen), strict=True))
    # Seen: where their prior stands among the recorded models' priors (a best, c worst); unseen: where their size
    # stands among the recorded models' sizes (huge above all three, mid level with b).
    assert scores["seen/a"] == pytest.approx(5 / 6) and scores["seen/c"] == pytest.approx(1 / 6)
    assert scores["new/huge"] == 1.0 and scores["new/mid"] == pytest.approx(scores["seen/b"]) == pytest.approx(0.5)
    assert scores["new/unsized"] < min(v for k, v in scores.items() if k != "new/unsized")


def test_rank_refuses_an_empty_pool_and_a_negative_top_k_and_reads_0_as_all() -> None:
    tokens = TaskTokens(TaskDescription(name="t", modality="image", label_names=("x", "y")))
    with pytest.raises(InvalidIndexError, match="no candidate to rank"):
        rank(tokens, [], ranker=SizePrior())
    with pytest.raises(ValueError, match="top_k must be >= 0, got -1"):
        rank(tokens, POOL[:2], ranker=SizePrior(), top_k=-1)
    assert len(rank(tokens, POOL[:2], ranker=SizePrior(), top_k=0)) == 2
