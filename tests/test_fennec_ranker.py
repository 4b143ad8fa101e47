"""FennecRanker: a latent transfer space from the records, archi2vec for unseen models, token proxy for new tasks."""

from __future__ import annotations

import numpy as np
import pytest
from test_graph_ranker import World, leave_one_out_tau, new_model, synthetic_world

from hf_spider.errors import InvalidIndexError
from hf_spider.rankers.fennec import FennecRanker


@pytest.fixture(scope="module")
def world() -> World:
    return synthetic_world(seed=1)


def test_leave_one_target_out_recovers_the_family_task_match(world):
    taus = leave_one_out_tau(lambda: FennecRanker(seed=0), world)
    assert min(taus) > 0.5, taus


def test_scores_are_one_dot_product_per_model(world):
    """Score = (b_m, u_m) . (1, v_task): the exposed model vectors reproduce the scores exactly."""
    target = "object-2"
    ranker = FennecRanker(seed=0).fit(world.records.without_target(target), world.models, world.tasks)
    scores = ranker.score(world.tasks[target], world.models)
    vectors = ranker.model_vectors(world.models)
    assert vectors.shape == (len(world.models), ranker.rank + 1)
    other = ranker.score(world.tasks["texture-2"], world.models)
    # the bias part is shared, so the difference between two tasks is linear in u_m
    task_delta = np.linalg.lstsq(vectors[:, 1:], scores - other, rcond=None)[0]
    np.testing.assert_allclose(vectors[:, 1:] @ task_delta, scores - other, atol=1e-9)


def test_unseen_model_gets_its_position_from_archi2vec(world):
    target = "texture-0"
    ranker = FennecRanker(seed=0).fit(world.records.without_target(target), world.models, world.tasks)
    fresh = [new_model("vit", "new/vit"), new_model("convnext", "new/convnext")]
    texture = ranker.score(world.tasks[target], fresh)
    obj = ranker.score(world.tasks["object-0"], fresh)
    assert texture[1] > texture[0]
    assert obj[0] > obj[1]


def test_same_seed_same_scores_other_seed_same_ranking(world):
    target = "texture-1"
    train = world.records.without_target(target)
    a = FennecRanker(seed=0).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    b = FennecRanker(seed=0).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    c = FennecRanker(seed=1).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    np.testing.assert_array_equal(a, b)
    assert np.corrcoef(a, c)[0, 1] > 0.9  # the factorisation's start point barely matters


def test_task_of_another_modality_falls_back_to_model_biases(world):
    """No recorded task of the modality: every task gets the same ranking (the learned model biases)."""
    from dataclasses import replace

    ranker = FennecRanker(seed=0).fit(world.records, world.models, world.tasks)
    text = world.tasks["object-0"]
    text = replace(text, description=replace(text.description, name="new-text", modality="text"))
    np.testing.assert_allclose(ranker.score(text, world.models), ranker.model_vectors(world.models)[:, 0])


def test_score_before_fit_says_what_to_do(world):
    with pytest.raises(InvalidIndexError, match="call fit"):
        FennecRanker().score(world.tasks["object-0"], world.models)
