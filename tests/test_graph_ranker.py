"""GraphRanker: a TransferGraph-style ranker learned from records, scored leave-one-target-out on a synthetic zoo.

The synthetic zoo has a known structure: attention models (vit) transfer better to "object" tasks and convolution
models (convnext) to "texture" tasks, and the two kinds of task have different label-name embeddings. A ranker that
uses the records and the task tokens as intended recovers that structure for a held-out task; one that ignores them
does not. The world builder is shared with ``test_fennec_ranker.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import weightedtau

from hf_spider.errors import InvalidIndexError
from hf_spider.finetune_records import FinetuneRecords
from hf_spider.hub.records import ModelRecord
from hf_spider.rankers.baselines import SizePrior
from hf_spider.rankers.graph import GraphRanker, percentile_matrix, spectral_embedding
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics

KINDS = {"vit": "object", "convnext": "texture"}


@dataclass
class World:
    records: FinetuneRecords
    models: list[ModelRecord]
    tasks: dict[str, TaskTokens]
    kind: dict[str, str]  # task name -> "object" / "texture"


def synthetic_world(seed: int = 0, n_per_family: int = 6, n_per_kind: int = 4) -> World:
    """Models of two families, tasks of two kinds; accuracy = family/kind match + model quality + noise."""
    rng = np.random.default_rng(seed)
    directions = {"object": rng.standard_normal(16), "texture": rng.standard_normal(16)}
    models, quality = [], {}
    for family in KINDS:
        for i in range(n_per_family):
            repo_id = f"zoo/{family}-{i}"
            models.append(
                ModelRecord(
                    repo_id=repo_id,
                    pipeline_tag="image-classification",
                    model_type=family,
                    architectures=(f"{'ViT' if family == 'vit' else 'ConvNext'}ForImageClassification",),
                    num_parameters=int(rng.integers(5, 90) * 1_000_000),
                    input_size=224,
                )
            )
            quality[repo_id] = rng.uniform(0.0, 0.1)
    tasks, kind, rows = {}, {}, []
    for k in ("object", "texture"):
        for j in range(n_per_kind):
            name = f"{k}-{j}"
            labels = directions[k] + 0.3 * rng.standard_normal((5, 16))
            desc = TaskDescription(name=name, modality="image", label_names=tuple(f"{name}-c{c}" for c in range(5)))
            tasks[name] = TaskTokens(desc, label_embeddings=labels.astype(np.float32), statistics=task_statistics(desc))
            kind[name] = k
            for m in models:
                match = KINDS[m.model_type or ""] == k
                accuracy = 0.5 + 0.3 * match + quality[m.repo_id] + 0.02 * rng.standard_normal()
                rows.append({"model": m.repo_id, "target": name, "modality": "image", "accuracy": accuracy})
    empty = pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"])
    return World(FinetuneRecords(pd.DataFrame(rows), empty), models, tasks, kind)


def leave_one_out_tau(ranker_factory, world: World) -> list[float]:
    """Weighted tau of the ranker on every task, fitted each time without that task's records."""
    taus = []
    for target in world.tasks:
        ranker = ranker_factory().fit(world.records.without_target(target), world.models, world.tasks)
        truth = world.records.accuracy[world.records.accuracy.target == target].set_index("model").accuracy
        by_id = {m.repo_id: m for m in world.models}
        scores = ranker.score(world.tasks[target], [by_id[m] for m in truth.index])
        taus.append(weightedtau(truth.to_numpy(), scores)[0])
    return taus


def new_model(family: str, repo_id: str) -> ModelRecord:
    arch = "ViTForImageClassification" if family == "vit" else "ConvNextForImageClassification"
    return ModelRecord(
        repo_id=repo_id,
        pipeline_tag="image-classification",
        model_type=family,
        architectures=(arch,),
        num_parameters=40_000_000,
        input_size=224,
    )


@pytest.fixture(scope="module")
def world() -> World:
    return synthetic_world()


def test_leave_one_target_out_recovers_the_family_task_match(world):
    taus = leave_one_out_tau(lambda: GraphRanker(seed=0), world)
    size = [
        weightedtau(
            world.records.accuracy[world.records.accuracy.target == t].accuracy.to_numpy(),
            SizePrior().score(world.tasks[t], world.models),
        )[0]
        for t in world.tasks
    ]
    assert min(taus) > 0.5, taus
    assert np.mean(taus) > np.mean(size) + 0.3


def test_unseen_model_is_placed_by_its_architecture(world):
    target = "texture-0"
    ranker = GraphRanker(seed=0).fit(world.records.without_target(target), world.models, world.tasks)
    fresh = [new_model("vit", "new/vit"), new_model("convnext", "new/convnext")]
    texture = ranker.score(world.tasks[target], fresh)
    obj = ranker.score(world.tasks["object-0"], fresh)
    assert texture[1] > texture[0]  # convolution wins on texture ...
    assert obj[0] > obj[1]  # ... and attention on objects, for models the records never saw


def held_out_entirely(world: World, target: str, held: set[str]) -> FinetuneRecords:
    """The records without ``target`` and without any run of the ``held`` models (the cold-start protocol)."""
    accuracy = world.records.without_target(target).accuracy
    return FinetuneRecords(accuracy[~accuracy.model.isin(held)].reset_index(drop=True), world.records.estimator_scores)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_models_without_records_are_ranked_by_family_on_every_task(seed):
    """Cold start: a third of the models is listed but has no record at all; on every held-out task each of them
    whose family suits the task kind must still outrank each of them whose family does not."""
    world = synthetic_world(seed=seed)
    cold = world.models[::3]
    for target in world.tasks:
        ranker = GraphRanker(seed=0).fit(
            held_out_entirely(world, target, {m.repo_id for m in cold}), world.models, world.tasks
        )
        scores = ranker.score(world.tasks[target], cold)
        suits = np.array([KINDS[m.model_type or ""] == world.kind[target] for m in cold])
        assert scores[suits].min() > scores[~suits].max(), (target, scores, suits)


def test_listed_model_without_records_is_scored_like_an_unlisted_twin(world):
    """A model passed to fit with no record is placed from its architecture, exactly as a model fit never heard of."""
    target = "object-2"
    listed = [m for m in world.models if m.repo_id in ("zoo/vit-1", "zoo/convnext-1")]
    ranker = GraphRanker(seed=0).fit(
        held_out_entirely(world, target, {m.repo_id for m in listed}), world.models, world.tasks
    )
    twins = [replace(m, repo_id=f"elsewhere/{m.repo_id}") for m in listed]
    scores = ranker.score(world.tasks[target], listed + twins)
    np.testing.assert_allclose(scores[:2], scores[2:])
    assert scores[0] > scores[1]  # the attention model on an object task


def test_tasks_without_records_are_ignored(world):
    """Tokens of the held-out task handed to fit change nothing: only recorded targets enter the graph."""
    target = "object-1"
    train = world.records.without_target(target)
    others = {t: v for t, v in world.tasks.items() if t != target}
    with_target = GraphRanker(seed=0).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    without = GraphRanker(seed=0).fit(train, world.models, others).score(world.tasks[target], world.models)
    np.testing.assert_allclose(with_target, without)


def test_same_seed_same_scores(world):
    target = "texture-1"
    train = world.records.without_target(target)
    a = GraphRanker(seed=0).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    b = GraphRanker(seed=0).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    np.testing.assert_array_equal(a, b)


def test_boosted_regressor_also_learns(world):
    taus = leave_one_out_tau(lambda: GraphRanker(seed=0, regressor="boosted"), world)
    assert np.mean(taus) > 0.5, taus


def test_score_before_fit_says_what_to_do(world):
    with pytest.raises(InvalidIndexError, match="call fit"):
        GraphRanker().score(world.tasks["object-0"], world.models)


def test_fit_without_task_tokens_names_the_fix(world):
    with pytest.raises(InvalidIndexError, match="pass tasks="):
        GraphRanker().fit(world.records, world.models, {})


def test_percentile_matrix_ranks_within_each_target():
    accuracy = pd.DataFrame(
        {
            "model": ["a", "b", "c", "a", "b"],
            "target": ["t1", "t1", "t1", "t2", "t2"],
            "modality": "image",
            "accuracy": [0.9, 0.1, 0.5, 0.2, 0.3],
        }
    )
    matrix = percentile_matrix(FinetuneRecords(accuracy, pd.DataFrame()))
    assert matrix.loc["a", "t1"] == 1.0 and matrix.loc["b", "t1"] == pytest.approx(1 / 3)
    assert matrix.loc["b", "t2"] == 1.0 and np.isnan(matrix.loc["c", "t2"])


def test_spectral_embedding_separates_two_communities():
    block = np.ones((4, 4)) - np.eye(4)
    adjacency = np.block([[block, np.zeros((4, 4))], [np.zeros((4, 4)), block]])
    adjacency[3, 4] = adjacency[4, 3] = 0.05  # a weak bridge keeps the graph connected
    first = spectral_embedding(adjacency, 1)[:, 0]
    assert np.sign(first[:4]).tolist() == [np.sign(first[0])] * 4
    assert np.sign(first[4:]).tolist() == [-np.sign(first[0])] * 4


def rounding_noise(adjacency: np.ndarray, seed: int = 1) -> np.ndarray:
    """``adjacency`` with each weight moved by ~1e-12 relative (symmetrically): what another BLAS summation order,
    thread count or build does to it."""
    noise = 1e-12 * np.random.default_rng(seed).standard_normal(adjacency.shape)
    return adjacency * (1.0 + (noise + noise.T) / 2)


def test_spectral_embedding_of_a_disconnected_graph_ignores_rounding_noise():
    """Three components: the Laplacian's null space has three dimensions, and embedding the whole graph at once takes
    an arbitrary basis of it that rounding picks. Each component embedded on its own does not move."""
    clique = np.ones((5, 5)) - np.eye(5)
    adjacency = np.zeros((12, 12))
    adjacency[:4, :4] = clique[:4, :4]
    adjacency[0, 1] = adjacency[1, 0] = 0.5
    adjacency[4:9, 4:9] = clique
    adjacency[9, 10] = adjacency[10, 9] = adjacency[10, 11] = adjacency[11, 10] = 1.0  # a path of three nodes
    embedding = spectral_embedding(adjacency, 3)
    np.testing.assert_allclose(spectral_embedding(rounding_noise(adjacency), 3), embedding, atol=1e-9)
    # a component is embedded as if it were the whole graph (up to the global scale), zero in the columns it lacks
    alone = spectral_embedding(adjacency[9:, 9:], 3)
    assert np.abs(embedding[9:, 2]).max() == 0.0
    np.testing.assert_allclose(embedding[9:, :2] / np.abs(embedding[9:, :2]).max(), alone, atol=1e-12)


def test_spectral_embedding_picks_a_canonical_basis_of_a_degenerate_eigenspace():
    """A ring of 8 nodes: every non-trivial eigenvalue but one is double, so ``eigh`` may return any rotation of each
    pair; the embedding must not depend on which."""
    ring = np.roll(np.eye(8), 1, axis=1)
    ring = ring + ring.T
    embedding = spectral_embedding(ring, 2)
    np.testing.assert_allclose(spectral_embedding(rounding_noise(ring), 2), embedding, atol=1e-9)
    assert np.linalg.matrix_rank(embedding) == 2


def unrecorded_family(prefix: str, family: str, num_parameters: int, n: int = 6) -> list[ModelRecord]:
    """``n`` listed models of one architecture that nothing was recorded for: archi2vec links them only to each other,
    so they form a component of the graph of their own."""
    return [
        ModelRecord(
            repo_id=f"{prefix}/{family}-{i}",
            pipeline_tag="image-classification",
            model_type=family,
            architectures=(f"{family.title()}ForImageClassification",),
            num_parameters=num_parameters,
            input_size=224,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("target", ["object-0", "texture-1"])
def test_listed_models_the_records_cannot_reach_do_not_move_the_scores(world, target):
    """Listing clusters of unrecorded models that no edge links to the recorded ones must leave every score as it was,
    whatever their ids (and so their place in the node order). Embedding the disconnected graph at once filled the
    embedding with an arbitrary, noise-picked basis of the Laplacian's null space: the cold-start weighted tau of the
    example records read 0.37 to 0.50 depending on the BLAS thread count and the machine."""
    cold = world.models[::3]
    train = held_out_entirely(world, target, {m.repo_id for m in cold})
    plain = GraphRanker(seed=0).fit(train, world.models, world.tasks).score(world.tasks[target], world.models)
    for prefix in ("aaa", "zzz"):  # before and after the recorded "zoo/" models in the node order
        listed = (
            world.models + unrecorded_family(prefix, "deit", 22_000_000) + unrecorded_family(prefix, "beit", 86_000_000)
        )
        scores = GraphRanker(seed=0).fit(train, listed, world.tasks).score(world.tasks[target], world.models)
        np.testing.assert_allclose(scores, plain, atol=1e-9)
        assert np.argsort(scores, kind="stable").tolist() == np.argsort(plain, kind="stable").tolist()
