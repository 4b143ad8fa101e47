"""The Model Spider scorer: training determinism, masking of missing task tokens, Hub round-trip, shipped default."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from hf_spider.errors import ScorerConfigError
from hf_spider.finetune_records import FinetuneRecords
from hf_spider.hub.records import ModelRecord
from hf_spider.scorer.model import PAIR_FEATURES, SIMILARITY_TEMPERATURES, TransferScorer, prior_readout
from hf_spider.scorer.ranker import SpiderRanker, default_scorer_path
from hf_spider.scorer.train import TrainConfig, fit_transfer_spaces, list_mle, train_scorer
from hf_spider.tokens.archi2vec import ARCHI2VEC_DIM
from hf_spider.tokens.ptm import PTMTokens, archi2vec_slice, ptm_tokens, token_dim
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics, task_tokens_from_labels

FAST = TrainConfig(epochs=40, members=2, hidden=16)
TASK_LABELS = {
    "animals": ("cat", "dog", "horse"),
    "vehicles": ("car", "truck", "bus"),
    "flowers": ("rose", "tulip", "daisy"),
    "food": ("pizza", "sushi", "salad"),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def zoo() -> tuple[list[ModelRecord], FinetuneRecords, dict[str, TaskTokens]]:
    """Ten models whose accuracy grows with size, recorded on four label-name tasks."""
    models = [
        ModelRecord(
            f"org/model-{i}",
            pipeline_tag="image-classification",
            model_type=("vit", "convnext")[i % 2],
            num_parameters=10_000_000 * (i + 1),
            label_names=("cat", "dog") if i % 3 == 0 else None,
        )
        for i in range(10)
    ]
    rng = np.random.default_rng(0)
    rows = [
        (m.repo_id, task, "image", 0.5 + 0.04 * i + 0.01 * rng.random())
        for task in TASK_LABELS
        for i, m in enumerate(models)
    ]
    records = FinetuneRecords(
        pd.DataFrame(rows, columns=["model", "target", "modality", "accuracy"]),
        pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"]),
    )
    tasks = {
        name: task_tokens_from_labels(TaskDescription(name=name, modality="image", label_names=labels))
        for name, labels in TASK_LABELS.items()
    }
    return models, records, tasks


def test_list_mle_prefers_the_true_order() -> None:
    target = torch.tensor([0.9, 0.5, 0.1])
    assert list_mle(torch.tensor([3.0, 2.0, 1.0]), target) < list_mle(torch.tensor([1.0, 2.0, 3.0]), target)


def test_training_is_deterministic(zoo: tuple) -> None:
    models, records, tasks = zoo
    first = train_scorer(records, models, tasks, config=FAST).state_dict()
    second = train_scorer(records, models, tasks, config=FAST).state_dict()
    other = train_scorer(records, models, tasks, config=TrainConfig(**{**FAST.__dict__, "seed": 1})).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first if not torch.isnan(first[k]).any())
    assert any(not torch.equal(first[k], other[k]) for k in first if k.startswith("members."))


def test_trained_scorer_ranks_a_held_out_task_and_unseen_models(zoo: tuple) -> None:
    models, records, tasks = zoo
    train = FinetuneRecords(records.accuracy[records.accuracy.target != "food"], records.estimator_scores)
    ranker = SpiderRanker(config=FAST).fit(train, models, {k: v for k, v in tasks.items() if k != "food"})
    scores = ranker.score(tasks["food"], models)
    truth = records.accuracy[records.accuracy.target == "food"].set_index("model").accuracy[[m.repo_id for m in models]]
    from scipy.stats import weightedtau

    assert weightedtau(truth.to_numpy(), scores)[0] > 0.5
    unseen = [
        ModelRecord("new/tiny", model_type="vit", num_parameters=1_000_000),
        ModelRecord("new/huge", model_type="vit", num_parameters=500_000_000),
    ]
    unseen_scores = ranker.score(tasks["food"], unseen)
    assert np.isfinite(unseen_scores).all() and unseen_scores[1] > unseen_scores[0]


def test_missing_task_tokens_are_masked() -> None:
    torch.manual_seed(0)
    scorer = TransferScorer(in_dim=token_dim(8), text_dim=8, proto_dim=8, hidden=8).eval()
    member = scorer.member_modules[0]
    torch.nn.init.normal_(member.out.weight)  # the content path starts at zero output; give it a voice
    labels, stats = torch.randn(3, 8), torch.randn(5)
    garbage = torch.randn(4, 8) * 100
    with_masked = member.task_summary(labels, garbage, stats, torch.tensor([True] * 3 + [False] * 4 + [True]))
    without = member.task_summary(labels, torch.zeros(0, 8), stats, torch.tensor([True] * 3 + [True]))
    torch.testing.assert_close(with_masked, without)
    # a task with nothing at all still scores (the null token keeps attention defined)
    bare = TaskTokens(description=TaskDescription(name="bare", modality="image", label_names=("a", "b")))
    tokens = PTMTokens(("m1", "m2"), np.random.default_rng(0).random((2, token_dim(8)), dtype=np.float32), 8)
    assert np.isfinite(scorer.score_tokens(tokens, bare)).all()
    # prototypes, when a task has them, do change the scores
    description = TaskDescription(name="t", modality="image", label_names=("a", "b"))
    labelled = TaskTokens(
        description, label_embeddings=np.ones((2, 8), np.float32), statistics=task_statistics(description)
    )
    sampled = TaskTokens(
        description,
        prototypes=np.random.default_rng(1).random((2, 8), dtype=np.float32),
        label_embeddings=labelled.label_embeddings,
        statistics=labelled.statistics,
    )
    assert not np.allclose(scorer.score_tokens(tokens, labelled), scorer.score_tokens(tokens, sampled))


def test_mismatched_tokens_are_refused() -> None:
    scorer = TransferScorer(in_dim=token_dim(8), text_dim=8, proto_dim=8)
    wrong = PTMTokens(("m",), np.zeros((1, token_dim(16)), np.float32), 16)
    with pytest.raises(ScorerConfigError, match="retrain the scorer"):
        scorer.score_tokens(wrong, TaskTokens(TaskDescription(name="t", modality="image", label_names=("a", "b"))))
    with pytest.raises(ScorerConfigError, match="token_dim"):
        TransferScorer(in_dim=7, text_dim=8)
    assert scorer.device == torch.device("cpu")


def test_weights_of_another_layout_are_refused_with_the_fix(tmp_path) -> None:
    """A folder saved by an older scorer (a buffer renamed since) gives one line naming the fix, not torch's dump."""
    from safetensors.torch import load_file, save_file

    TransferScorer(in_dim=token_dim(8), text_dim=8, proto_dim=8).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["families"] = weights.pop("arch")  # the buffer of the previous release
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(ScorerConfigError, match=r"retrain it with `hf-spider train-scorer`") as info:
        TransferScorer.from_pretrained(tmp_path)
    assert "\n" not in str(info.value) and "families" in str(info.value)


def test_hub_round_trip_gives_identical_rankings(zoo: tuple, loopback_hub, tmp_path) -> None:
    from hf_spider.testing.loopback_hub import DEFAULT_USER

    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST, summary="trained by a test")
    scorer.save_pretrained(tmp_path / "scorer")
    local = TransferScorer.from_pretrained(tmp_path / "scorer")
    repo_id = f"{DEFAULT_USER}/spider-scorer"
    local.push_to_hub(repo_id, token=loopback_hub.token)
    remote = TransferScorer.from_pretrained(repo_id)
    tokens = ptm_tokens(models)
    for task in tasks.values():
        expected = scorer.score_tokens(tokens, task)
        np.testing.assert_array_equal(local.score_tokens(tokens, task), expected)
        np.testing.assert_array_equal(remote.score_tokens(tokens, task), expected)
    from huggingface_hub import hf_hub_download

    with open(hf_hub_download(repo_id, "README.md"), encoding="utf-8") as f:
        card = f.read()
    assert "library_name: hf_spider" in card and "trained by a test" in card


def test_scorer_is_a_ranker(zoo: tuple) -> None:
    from hf_spider.rankers.base import Ranker

    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    assert isinstance(scorer, Ranker) and scorer.name == "hf_spider"
    np.testing.assert_array_equal(
        scorer.score(tasks["food"], models), scorer.score_tokens(ptm_tokens(models), tasks["food"])
    )


def test_shipped_default_scorer_loads_and_ranks() -> None:
    from hf_spider.hub.index import load_bundled_index
    from hf_spider.rankers import get_ranker

    assert (default_scorer_path() / "model.safetensors").is_file()
    ranker = get_ranker("spider")
    candidates = [m for m in load_bundled_index() if m.modality == "text"][:8]
    task = task_tokens_from_labels(
        TaskDescription(name="reviews", modality="text", label_names=("negative", "positive"))
    )
    scores = ranker.score(task, candidates)
    assert scores.shape == (8,) and np.isfinite(scores).all() and np.ptp(scores) > 0


def test_cli_train_scorer_writes_a_loadable_scorer(zoo: tuple, tmp_path, capsys) -> None:
    from hf_spider.cli import main
    from hf_spider.finetune_records import write_records_csv
    from hf_spider.hub.index import write_index

    models, records, _ = zoo
    records = FinetuneRecords(  # targets whose label names the package knows
        records.accuracy.replace({"target": {"animals": "cifar10", "vehicles": "glue/sst2"}}).query(
            "target in ('cifar10', 'glue/sst2')"
        ),
        records.estimator_scores,
    )
    write_records_csv(records, tmp_path / "records.csv")
    write_index(models, tmp_path / "index.jsonl")
    argv = ["train-scorer", "--records", str(tmp_path / "records.csv"), "--candidates", str(tmp_path / "index.jsonl")]
    assert main([*argv, "--output", str(tmp_path / "out"), "--epochs", "5", "--members", "1"]) == 0
    scorer = TransferScorer.from_pretrained(tmp_path / "out")
    assert scorer.train_tasks == ["cifar10", "glue/sst2"] and len(scorer.model_ids) == len(models)
    assert "records file records.csv" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_ranker_registry() -> None:
    from hf_spider.rankers import UnknownRankerError, get_ranker

    assert get_ranker("size_prior").name == "size_prior"
    assert get_ranker("collab_prior").name == "collab_prior"
    with pytest.raises(UnknownRankerError, match="pick one of"):
        get_ranker("oracle")


def test_fast_scoring_equals_the_reference_forward(zoo: tuple) -> None:
    """``score_tokens`` (fused matmuls, task side folded in) gives what ``forward`` gives, seen and unseen alike."""
    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    for member in scorer.member_modules:  # a trained content path is small: give it a voice
        torch.nn.init.normal_(member.out.weight)
    unseen = [
        ModelRecord("new/vit", model_type="vit", num_parameters=3_000_000, label_names=("rose", "tulip")),
        ModelRecord("new/exotic", model_type="never-seen-family", num_parameters=9_000_000),
    ]
    tokens = ptm_tokens([*models, *unseen])
    for task in tasks.values():
        with torch.no_grad():
            reference = scorer(
                torch.from_numpy(tokens.features), scorer.rows_of(tokens.model_ids), *scorer.task_inputs(task)
            )
        np.testing.assert_allclose(scorer.score_tokens(tokens, task, batch_size=5), reference.numpy(), atol=1e-5)


def test_unseen_models_read_their_closest_architecture() -> None:
    """An unseen model's learned token is the mean row of its closest seen architecture; a seen one keeps its own."""
    scorer = TransferScorer(
        in_dim=token_dim(8), text_dim=8, proto_dim=8, model_ids=["a", "b", "c"], train_tasks=["t1", "t2"]
    )
    scorer.collab.copy_(torch.tensor([[0.2, 0.4], [0.6, float("nan")], [0.9, 0.1]]))
    base = torch.randn(ARCHI2VEC_DIM, generator=torch.Generator().manual_seed(0)) * 300  # archi2vec-sized values
    other = base.clone()
    other[0] += 50.0
    scorer.arch.copy_(torch.stack([base, base, other]))  # a, b: clones of one architecture; c: another
    x = torch.zeros(3, token_dim(8))
    x[0, archi2vec_slice()] = base  # a third clone: exactly at a and b
    x[1, archi2vec_slice()] = base
    x[2, archi2vec_slice()] = other + 1.0  # closest to c
    rows = torch.tensor([-1, 0, -1])
    pair = scorer.pair_features(x, rows, torch.zeros(0, 8))
    at = {name: i for i, name in enumerate(PAIR_FEATURES)}
    assert pair[:, at["seen"]].tolist() == [0.0, 1.0, 0.0]
    assert pair[:, at["has_record"]].tolist() == [1.0, 1.0, 1.0]
    # a's mean is 0.3, b's 0.6 (its only record): the clone reads their mean 0.45; "a" itself keeps its own 0.3
    torch.testing.assert_close(pair[:, at["collab_mean"]], torch.tensor([0.45, 0.3, 0.5]))
    # playing the seen model "a" as unseen in training: its own record must not count in its architecture's row
    hidden = scorer.pair_features(x[:1], torch.tensor([-1]), torch.zeros(0, 8), exclude_rows=torch.tensor([0]))
    torch.testing.assert_close(hidden[:, at["collab_mean"]], torch.tensor([0.6]))
    # with no record left on any architecture, the unseen model has no learned token at all
    scorer.collab.fill_(float("nan"))
    empty = scorer.pair_features(x[:1], torch.tensor([-1]), torch.zeros(0, 8))
    assert empty[0, at["has_record"]] == 0.0 and empty[0, at["collab_mean"]] == 0.0


def test_read_out_is_pulled_back_to_its_prior(zoo: tuple) -> None:
    """``prior_strength`` anchors the listwise-learned read-out to :data:`PRIOR_READOUT`; 0 lets it move freely."""
    models, records, tasks = zoo
    prior = prior_readout()
    anchored = train_scorer(records, models, tasks, config=replace(FAST, prior_strength=1e4))
    free = train_scorer(records, models, tasks, config=replace(FAST, prior_strength=0.0))
    for member in anchored.member_modules:
        torch.testing.assert_close(member.skip.weight.detach(), prior, atol=1e-2, rtol=0)
    assert max(float((m.skip.weight.detach() - prior).abs().max()) for m in free.member_modules) > 0.05


def test_transfer_space_scores_seen_models_by_their_vector_and_unseen_by_archi2vec() -> None:
    """Seen models read ``b_m + u_m . v`` from their own vector; a model never seen reads its archi2vec placement."""
    scorer = TransferScorer(in_dim=token_dim(8), text_dim=8, proto_dim=8, model_ids=["a"], train_tasks=["t1", "t2"])
    scorer.collab.copy_(torch.tensor([[0.5, 0.5]]))
    scorer.latent.zero_()
    scorer.latent[0, :2] = torch.tensor([0.3, 2.0])  # b_a = 0.3, u_a = (2, 0, 0, 0)
    scorer.task_latent.zero_()
    scorer.task_latent[:, 1] = torch.tensor([1.0, 3.0])  # v_t1 = (1, ...), v_t2 = (3, ...): no labels -> mean 2
    scorer.arch_map.zero_()
    scorer.arch_map[-1, :2] = torch.tensor([0.1, 1.0])  # an all-zero archi2vec sits at b = 0.1, u = (1, 0, 0, 0)
    x = torch.zeros(2, token_dim(8))
    pair = scorer.pair_features(x, torch.tensor([0, -1]), torch.zeros(0, 8))
    latent = pair[:, [PAIR_FEATURES.index(f"latent_{t}") for t in SIMILARITY_TEMPERATURES]]
    torch.testing.assert_close(latent, torch.tensor([[0.3 + 2.0 * 2.0] * 2, [0.1 + 1.0 * 2.0] * 2]))
    # training on t2: its vector must not speak for itself, so only t1's (v = 1) is read
    held = scorer.pair_features(x, torch.tensor([0, -1]), torch.zeros(0, 8), exclude_task="t2")
    held_latent = held[:, [PAIR_FEATURES.index(f"latent_{t}") for t in SIMILARITY_TEMPERATURES]]
    torch.testing.assert_close(held_latent, torch.tensor([[0.3 + 2.0] * 2, [0.1 + 1.0] * 2]))


def test_training_spaces_never_see_the_task_they_score(zoo: tuple) -> None:
    """The space a training task is trained with is factorised without its column: its records cannot leak in."""
    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    by_id = {m.repo_id: m for m in models}
    x = torch.from_numpy(ptm_tokens([by_id[m] for m in scorer.model_ids]).features)
    spaces = fit_transfer_spaces(scorer, x, seed=0)
    shuffled = scorer.collab.clone()
    column = scorer.train_tasks.index("animals")
    scorer.collab[:, column] = shuffled[
        torch.randperm(len(shuffled), generator=torch.Generator().manual_seed(0)), column
    ]
    again = fit_transfer_spaces(scorer, x, seed=0)
    torch.testing.assert_close(again["animals"].model_x, spaces["animals"].model_x)  # blind to its own column
    assert not torch.allclose(again["food"].model_x, spaces["food"].model_x)  # the others do read it


def test_content_path_is_trained_only_when_asked(zoo: tuple) -> None:
    """By default unseen models are scored by the linear read-out alone; ``content_path=True`` trains the attention."""
    models, records, tasks = zoo
    plain = train_scorer(records, models, tasks, config=FAST)
    assert all(not m.out.weight.any() and not m.out.bias.any() for m in plain.member_modules)
    attended = train_scorer(records, models, tasks, config=replace(FAST, content_path=True))
    assert all(m.out.weight.any() for m in attended.member_modules)
    unseen = ptm_tokens([ModelRecord("new/vit", model_type="vit", num_parameters=3_000_000)])
    task = tasks["animals"]
    assert plain.score_tokens(unseen, task) != pytest.approx(attended.score_tokens(unseen, task))
