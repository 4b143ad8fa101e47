"""One entry per checkpoint: copies collapse into their original (:mod:`hf_spider.hub.dedup`)."""

from __future__ import annotations

import pytest

from hf_spider.hub.dedup import aliases_of, collapse_copies
from hf_spider.hub.pool import load_default_pool
from hf_spider.hub.records import ModelRecord


def _record(repo_id: str, **fields: object) -> ModelRecord:
    return ModelRecord(repo_id, **{"architectures": ("ConvNext",), "num_parameters": 28, **fields})  # type: ignore[arg-type]


def test_convnext_reuploads_collapse_into_the_facebook_originals() -> None:
    by_id = {r.repo_id: r for r in collapse_copies(load_default_pool())}
    assert "nielsr/convnext-xlarge-224-22k" not in by_id and "nielsr/convnext-xlarge-224-22k-1k" not in by_id
    assert aliases_of(by_id["facebook/convnext-xlarge-224-22k"]) == ("nielsr/convnext-xlarge-224-22k",)
    assert aliases_of(by_id["facebook/convnext-xlarge-224-22k-1k"]) == ("nielsr/convnext-xlarge-224-22k-1k",)


def test_identical_weight_files_collapse_whatever_the_names() -> None:
    a = ModelRecord("org/a", created_at="2022-01-01", extra={"weights_sha256": ["f" * 64]})
    b = ModelRecord("other/b", created_at="2023-01-01", extra={"weights_sha256": ["f" * 64]})
    c = ModelRecord("other/c", extra={"weights_sha256": ["e" * 64]})
    out = collapse_copies([b, c, a])
    assert [r.repo_id for r in out] == ["org/a", "other/c"] and aliases_of(out[0]) == ("other/b",)


@pytest.mark.parametrize(
    ("copy_fields", "original"),
    [
        ({"base_models": ("org/convnext",)}, "org/convnext"),  # the copy's card names its source
        ({"created_at": "2021-01-01"}, "zz/convnext"),  # else the earliest
    ],
)
def test_the_original_is_the_named_source_else_the_earliest(copy_fields: dict, original: str) -> None:
    out = collapse_copies([_record("org/convnext", created_at="2022-01-01"), _record("zz/convnext", **copy_fields)])
    assert [r.repo_id for r in out] == [original]


def test_same_name_with_another_size_or_architecture_is_not_a_copy() -> None:
    records = [_record("a/net"), _record("b/net", num_parameters=29), ModelRecord("c/net", num_parameters=28)]
    assert collapse_copies(records) == records


def test_collapsing_twice_changes_nothing() -> None:
    once = collapse_copies(load_default_pool())
    assert collapse_copies(once) == once


def test_five_unrelated_tasks_show_no_checkpoint_twice() -> None:
    from hf_spider.rankers import get_ranker
    from hf_spider.ranking import rank, select_candidates
    from hf_spider.tokens.build import task_tokens_from_labels
    from hf_spider.tokens.task import TaskDescription

    pool = load_default_pool()
    copies = {alias for r in collapse_copies(pool) for alias in aliases_of(r)}
    ranker = get_ranker()
    tasks = [
        ("image", ("healthy leaf", "rust", "scab", "mildew")),
        ("image", ("cat", "dog", "bird")),
        ("image", ("benign", "malignant")),
        ("text", ("positive", "negative")),
        ("text", ("sports", "politics", "science", "business")),
    ]
    for modality, labels in tasks:
        tokens = task_tokens_from_labels(TaskDescription(name="t", modality=modality, label_names=labels))
        shortlist = rank(tokens, select_candidates(pool, modality=modality), ranker=ranker, top_k=10)
        assert not copies & set(shortlist.model_ids)
