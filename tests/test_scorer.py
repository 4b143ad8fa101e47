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
from hf_spider.outputs.shortlist import EVIDENCE_KINDS
from hf_spider.scorer.model import TransferScorer
from hf_spider.scorer.pair import PAIR_FEATURES, SIMILARITY_TEMPERATURES, prior_readout
from hf_spider.scorer.protocols import mteb_dir
from hf_spider.scorer.ranker import SpiderRanker, default_scorer_path
from hf_spider.scorer.train import TrainConfig, fit_transfer_spaces, list_mle, train_scorer
from hf_spider.tokens.build import task_tokens_from_labels
from hf_spider.tokens.ptm import PTMTokens, ptm_tokens, token_dim
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics

FAST = TrainConfig(epochs=40, members=2, hidden=16, forest_trees=20)
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
    scorer = TransferScorer(
        in_dim=token_dim(8), text_dim=8, proto_dim=8, hidden=8, model_ids=["m1", "m2"], train_tasks=["t0"]
    ).eval()
    scorer.collab.copy_(torch.tensor([[0.2], [0.8]]))  # both seen: the content path corrects their read-out
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
    # prototypes, when a task has them, do change the scores of seen models
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
    weights["arch"] = weights.pop("calibration")  # a buffer of the previous release
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(ScorerConfigError, match=r"retrain it with `hf-spider train-scorer`") as info:
        TransferScorer.from_pretrained(tmp_path)
    assert "\n" not in str(info.value) and "arch" in str(info.value)


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


def test_a_hub_scorer_with_pickled_weights_only_is_refused_unread(
    zoo: tuple, loopback_hub, tmp_path, monkeypatch
) -> None:
    """The mixin falls back to ``pytorch_model.bin`` when a repo has no ``model.safetensors``: never downloaded (the
    Hub's answer on the files' sizes says there is none), so never unpickled."""
    import torch
    from huggingface_hub import HfApi

    from hf_spider.testing.loopback_hub import DEFAULT_USER

    models, records, tasks = zoo
    folder = tmp_path / "scorer"
    train_scorer(records, models, tasks, config=FAST).save_pretrained(folder)
    torch.save(dict(TransferScorer.from_pretrained(folder).state_dict()), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    repo_id = f"{DEFAULT_USER}/pickled-scorer"
    api = HfApi(token=loopback_hub.token)
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=folder)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a pickle was read"))
    loopback_hub.clear_requests()
    with pytest.raises(ScorerConfigError, match=r"its Hub repo holds no model\.safetensors, so it is no scorer repo"):
        TransferScorer.from_pretrained(repo_id)
    assert loopback_hub.count("pytorch_model.bin") == 0


def test_scoring_records_equals_scoring_their_tokens(zoo: tuple) -> None:
    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    assert scorer.name == "hf_spider"
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


def test_cli_train_scorer_writes_a_loadable_scorer(zoo: tuple, tmp_path, capsys, loopback_hub, monkeypatch) -> None:
    from hf_spider.cli import main
    from hf_spider.finetune_records import write_records_csv
    from hf_spider.hub.index import write_index
    from hf_spider.testing.loopback_hub import DEFAULT_USER

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
    monkeypatch.setenv("HF_TOKEN", loopback_hub.token)
    repo_id = f"{DEFAULT_USER}/team-scorer"
    options = ["--epochs", "5", "--members", "1", "--push-to-hub", repo_id]
    assert main([*argv, "--output", str(tmp_path / "out"), *options]) == 0
    from huggingface_hub import HfApi

    assert set(HfApi().list_repo_files(repo_id)) >= {"config.json", "model.safetensors", "README.md", "task_aware.npz"}
    scorer = TransferScorer.from_pretrained(tmp_path / "out")
    assert scorer.train_tasks == ["cifar10", "glue/sst2"] and len(scorer.model_ids) == len(models)
    assert "records file records.csv" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    # beside it, the task-aware model of MTEB's records and these, which the ranker of the folder reads
    for source in (tmp_path / "out", repo_id):
        task_aware = SpiderRanker.from_pretrained(source).task_aware
        assert task_aware is not None and task_aware.protocols == ("finetune", "linear_probe")
        mteb_models = set(pd.read_csv(mteb_dir() / "classification_scores.csv").model)
        assert set(task_aware.model_ids) == {m.repo_id for m in models} | mteb_models


def test_cli_train_scorer_reads_the_label_names_of_a_teams_own_targets(zoo: tuple, tmp_path) -> None:
    from hf_spider.cli import main
    from hf_spider.hub.index import write_index

    models, records, _ = zoo
    own = records.accuracy.query("target == 'animals'").assign(target="team-target", labels="cat|dog|horse")
    own.to_csv(tmp_path / "records.csv", index=False)  # a target no shipped list knows: only its labels column names it
    write_index(models, tmp_path / "index.jsonl")
    argv = ["train-scorer", "--records", str(tmp_path / "records.csv"), "--candidates", str(tmp_path / "index.jsonl")]
    assert main([*argv, "--output", str(tmp_path / "out"), "--epochs", "2", "--members", "1"]) == 0
    assert TransferScorer.from_pretrained(tmp_path / "out").train_tasks == ["team-target"]


def test_a_scorer_pushed_to_the_hub_ranks_with_its_task_aware_model(loopback_hub, tmp_path) -> None:
    """Loaded from its Hub repo, the shipped scorer ranks MTEB's encoders for the task as it does from its folder."""
    from hf_spider.cli.train_scorer import push_scorer_folder
    from hf_spider.ranking import load_candidates
    from hf_spider.scorer.task_aware import FILE_NAME, TaskAwareModel
    from hf_spider.testing.loopback_hub import DEFAULT_USER

    repo_id = f"{DEFAULT_USER}/spider-scorer"
    push_scorer_folder(default_scorer_path(), repo_id, token=loopback_hub.token)
    remote = SpiderRanker.from_pretrained(repo_id)
    shipped = TaskAwareModel.load(default_scorer_path() / FILE_NAME)
    assert remote.task_aware is not None and remote.task_aware.model_ids == shipped.model_ids
    np.testing.assert_array_equal(remote.task_aware.coef, shipped.coef)
    encoders = [c for c in load_candidates("bundled") if c.repo_id in set(shipped.model_ids[:40])]
    for words in ("sentiment of movie reviews", "which chemistry field a Wikipedia article is about"):
        task = task_tokens_from_labels(TaskDescription("task", "text", ("a", "b"), description=words))
        local = SpiderRanker.from_pretrained().score(task, encoders)
        np.testing.assert_allclose(remote.score(task, encoders), local, atol=1e-12)

    without = tmp_path / "without"  # a scorer pushed before it had one ranks with the scorer alone
    without.mkdir()
    for name in ("config.json", "model.safetensors", "README.md"):
        (without / name).write_bytes((default_scorer_path() / name).read_bytes())
    push_scorer_folder(without, f"{DEFAULT_USER}/scorer-only", token=loopback_hub.token)
    assert SpiderRanker.from_pretrained(f"{DEFAULT_USER}/scorer-only").task_aware is None


def test_offline_with_only_the_scorer_cached_the_log_says_the_task_aware_model_is_missing(
    loopback_hub, monkeypatch, caplog
) -> None:
    from huggingface_hub import constants

    from hf_spider.cli.train_scorer import push_scorer_folder
    from hf_spider.testing.loopback_hub import DEFAULT_USER

    repo_id = f"{DEFAULT_USER}/spider-scorer"
    push_scorer_folder(default_scorer_path(), repo_id, token=loopback_hub.token)
    TransferScorer.from_pretrained(repo_id)  # caches the scorer's files, not task_aware.npz
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level("WARNING", logger="hf_spider.scorer.task_aware"):
        ranker = SpiderRanker.from_pretrained(repo_id)
    assert ranker.scorer is not None and ranker.task_aware is None
    assert f"task_aware.npz of {repo_id} is not in the local cache" in caplog.text


@pytest.mark.parametrize("content", ["garbage", "wrong shapes", "not finite"])
def test_a_broken_task_aware_model_beside_a_scorer_is_refused_in_one_line(tmp_path, content) -> None:
    from hf_spider.scorer.inference import load_spider_ranker
    from hf_spider.scorer.task_aware import FILE_NAME, TaskAwareModel

    folder = tmp_path / "scorer"
    folder.mkdir()
    for path in default_scorer_path().iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    if content == "garbage":
        (folder / FILE_NAME).write_bytes(b"PK\x03\x04 not a zip")
    else:
        shipped = TaskAwareModel.load(folder / FILE_NAME)
        bias = shipped.bias[:-1] if content == "wrong shapes" else np.where(shipped.bias > 0, np.nan, shipped.bias)
        replace(shipped, bias=bias).save(folder / FILE_NAME)
    for load in (load_spider_ranker, SpiderRanker.from_pretrained):
        with pytest.raises(ScorerConfigError, match="cannot load the task-aware model beside") as info:
            load(folder)
        assert "\n" not in str(info.value) and "hf-spider train-scorer" in str(info.value)


def test_ranker_registry() -> None:
    from hf_spider.rankers import UnknownRankerError, get_ranker

    assert get_ranker("size_prior").name == "size_prior"
    assert get_ranker("collab_prior").name == "collab_prior"
    with pytest.raises(UnknownRankerError, match="pick one of"):
        get_ranker("oracle")


def test_seen_models_are_scored_by_their_calibrated_read_out(zoo: tuple) -> None:
    """``score_tokens`` of a seen model is the calibrated ``forward`` read-out; a model without records is scored by
    the cold-start forest, on the same [0, 1] scale."""
    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    assert float(scorer.calibration[0]) > 0  # a monotone map: calibration never reorders a list
    unseen = [ModelRecord("new/vit", model_type="vit", num_parameters=3_000_000, label_names=("rose", "tulip"))]
    tokens = ptm_tokens([*models, *unseen])
    for task in tasks.values():
        with torch.no_grad():
            features = torch.from_numpy(tokens.features[: len(models)])
            reference = scorer.expected(
                scorer(features, scorer.rows_of(tokens.model_ids[: len(models)]), *scorer.task_inputs(task))
            )
            cold = scorer.cold_start(torch.from_numpy(tokens.features[len(models) :]), torch.tensor([-1]))
        scores = scorer.score_tokens(tokens, task)
        np.testing.assert_allclose(scores[: len(models)], reference.numpy(), atol=1e-6)
        np.testing.assert_allclose(scores[len(models) :], cold.numpy(), atol=1e-6)
        assert ((scores >= 0) & (scores <= 1)).all()


def test_unseen_models_are_ranked_by_what_the_hub_says(zoo: tuple) -> None:
    """The cold-start forest learns quality from the token head (here: size) and says what each score rests on."""
    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    unseen = [
        ModelRecord("new/tiny", model_type="vit", num_parameters=5_000_000),
        ModelRecord("new/large", model_type="vit", num_parameters=95_000_000),
        ModelRecord("new/anonymous", num_parameters=50_000_000),
        ModelRecord("timm/resnet50.a1_in1k", library_name="timm"),
    ]
    explained = scorer.explain(tasks["food"], [models[0], *unseen])
    assert explained.scores[2] > explained.scores[1]
    assert explained.evidence == ("records", "content", "content", "size", "facts")
    assert "ImageNet top-1 81.2 (exact: timm/resnet50.a1_in1k)" in explained.details[4]
    assert explained.details[0] == "records on 4 training task(s)"
    assert ((explained.confidence >= 0) & (explained.confidence <= 1)).all()
    assert len(scorer.evidence_confidence) == len(EVIDENCE_KINDS)


def test_a_fine_tune_of_a_seen_model_is_scored_through_its_lineage(zoo: tuple) -> None:
    """A model whose card names a seen base (two hops up, through a model of the pool) reads that base's record."""
    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    best, worst = models[-1].repo_id, models[0].repo_id
    pool = [
        ModelRecord("x/mid", base_models=(best,), num_parameters=20_000_000, model_type="vit"),
        ModelRecord("x/child-of-best", base_models=("x/mid",), num_parameters=20_000_000, model_type="vit"),
        ModelRecord("x/child-of-worst", base_models=(worst,), num_parameters=20_000_000, model_type="vit"),
    ]
    tokens = ptm_tokens(pool, known=[])
    assert tokens.ancestors[1] == ("x/mid", best)
    explained = scorer.explain_tokens(tokens, tasks["food"])
    assert explained.evidence == ("lineage", "lineage", "lineage")
    assert explained.details[1] == f"lineage: {best}"
    assert explained.scores[1] >= explained.scores[2]


def test_a_fine_tune_inherits_its_ancestors_task_profile(zoo: tuple) -> None:
    """The forest reads the ancestor's mean percentile; the ancestor's calibrated read-out for the task, minus its
    read-out for a task that says nothing, moves the fine-tune per task: a base that is best on animal and vehicle
    tasks and worst on flower and food tasks passes that on to its fine-tune."""
    models, records, tasks = zoo
    base = models[4].repo_id
    accuracy = records.accuracy.copy()
    for target, value in (("animals", 0.99), ("vehicles", 0.99), ("flowers", 0.01), ("food", 0.01)):
        accuracy.loc[(accuracy.model == base) & (accuracy.target == target), "accuracy"] = value
    scorer = train_scorer(FinetuneRecords(accuracy, records.estimator_scores), models, tasks, config=FAST)
    child = ModelRecord("x/child", base_models=(base,), num_parameters=20_000_000, model_type="vit")
    tokens = ptm_tokens([child], known=models)
    row = scorer.rows_of([base])
    silent = task_tokens_from_labels(TaskDescription(name="silent", modality="image", label_names=()))
    scores = {}
    for name, labels in (("pets", ("cat", "dog", "horse")), ("garden", ("rose", "tulip", "daisy"))):
        task = task_tokens_from_labels(TaskDescription(name=name, modality="image", label_names=labels))
        with torch.no_grad():
            features = torch.from_numpy(tokens.features)
            own_task = float(scorer.expected(scorer(features, row, *scorer.task_inputs(task))))
            usual = float(scorer.expected(scorer(features, row, *scorer.task_inputs(silent))))
            forest = float(scorer.cold_start(features, row))
        scores[name] = float(scorer.score_tokens(tokens, task)[0])
        assert scores[name] == pytest.approx(min(max(forest + own_task - usual, 0.0), 1.0), abs=1e-6)
    assert scores["pets"] > scores["garden"] + 0.02  # the forest alone gives both the same score


def test_read_out_is_pulled_back_to_its_prior(zoo: tuple) -> None:
    """``prior_strength`` anchors the listwise-learned read-out to :data:`PRIOR_READOUT`; 0 lets it move freely."""
    models, records, tasks = zoo
    prior = prior_readout()
    anchored = train_scorer(records, models, tasks, config=replace(FAST, prior_strength=1e4))
    free = train_scorer(records, models, tasks, config=replace(FAST, prior_strength=0.0))
    for member in anchored.member_modules:
        torch.testing.assert_close(member.skip.weight.detach(), prior, atol=1e-2, rtol=0)
    assert max(float((m.skip.weight.detach() - prior).abs().max()) for m in free.member_modules) > 0.05


def test_transfer_space_scores_seen_models_by_their_vector() -> None:
    """Seen models read ``b_m + u_m . v`` from their own vector; a row of ``-1`` (no learned token) reads 0."""
    scorer = TransferScorer(in_dim=token_dim(8), text_dim=8, proto_dim=8, model_ids=["a"], train_tasks=["t1", "t2"])
    scorer.collab.copy_(torch.tensor([[0.5, 0.5]]))
    scorer.latent.zero_()
    scorer.latent[0, :2] = torch.tensor([0.3, 2.0])  # b_a = 0.3, u_a = (2, 0, 0, 0)
    scorer.task_latent.zero_()
    scorer.task_latent[:, 1] = torch.tensor([1.0, 3.0])  # v_t1 = (1, ...), v_t2 = (3, ...): no labels -> mean 2
    x = torch.zeros(2, token_dim(8))
    pair = scorer.pair_features(x, torch.tensor([0, -1]), torch.zeros(0, 8))
    latent = pair[:, [PAIR_FEATURES.index(f"latent_{t}") for t in SIMILARITY_TEMPERATURES]]
    torch.testing.assert_close(latent, torch.tensor([[0.3 + 2.0 * 2.0] * 2, [0.0, 0.0]]))
    # training on t2: its vector must not speak for itself, so only t1's (v = 1) is read
    held = scorer.pair_features(x, torch.tensor([0, -1]), torch.zeros(0, 8), exclude_task="t2")
    held_latent = held[:, [PAIR_FEATURES.index(f"latent_{t}") for t in SIMILARITY_TEMPERATURES]]
    torch.testing.assert_close(held_latent, torch.tensor([[0.3 + 2.0] * 2, [0.0, 0.0]]))


def test_a_target_whose_accuracies_all_tie_leaves_the_records_confidence_measured(zoo: tuple) -> None:
    """A target on which every model scored the same (runs that did not train) has no order: the confidence of
    record-based scores is measured on the other targets, not zeroed by that target's undefined rank correlation."""
    from hf_spider.outputs.shortlist import EVIDENCE_KINDS

    models, records, tasks = zoo
    flat = records.accuracy[records.accuracy.target == "animals"].assign(target="flat", accuracy=0.01)
    tied = FinetuneRecords(pd.concat([records.accuracy, flat], ignore_index=True), records.estimator_scores)
    label_names = ("sun", "rain", "snow")
    flat_task = task_tokens_from_labels(TaskDescription(name="flat", modality="image", label_names=label_names))
    scorer = train_scorer(tied, models, {**tasks, "flat": flat_task}, config=FAST)
    assert "flat" in scorer.train_tasks
    records_confidence = float(scorer.evidence_confidence[EVIDENCE_KINDS.index("records")])
    assert 0.0 < records_confidence <= 1.0


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


def test_training_spaces_beyond_the_fold_cap_leave_out_a_fold_of_groups(
    zoo: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more task groups than ``TRANSFER_SPACE_FOLDS``, groups are dealt into that many folds in order of
    appearance: a group's space is blind to every column of its fold (its own included) and reads the other folds."""
    import hf_spider.scorer.train as train

    models, records, tasks = zoo
    scorer = train_scorer(records, models, tasks, config=FAST)
    assert len(scorer.train_tasks) >= 3
    by_id = {m.repo_id: m for m in models}
    x = torch.from_numpy(ptm_tokens([by_id[m] for m in scorer.model_ids]).features)
    monkeypatch.setattr(train, "TRANSFER_SPACE_FOLDS", 2)
    spaces = fit_transfer_spaces(scorer, x, seed=0)
    first, second, third = scorer.train_tasks[:3]  # folds 0, 1, 0: each task is its own group here
    assert spaces[first] is spaces[third] and spaces[first] is not spaces[second]
    assert len({id(space) for space in spaces.values()}) == 2  # two refits, not one per group
    column = scorer.train_tasks.index(third)
    scorer.collab[:, column] = scorer.collab[
        torch.randperm(len(scorer.collab), generator=torch.Generator().manual_seed(0)), column
    ]
    again = fit_transfer_spaces(scorer, x, seed=0)
    torch.testing.assert_close(again[first].model_x, spaces[first].model_x)  # the third's fold mate is blind to it
    torch.testing.assert_close(again[third].model_x, spaces[third].model_x)  # and so is the third itself
    assert not torch.allclose(again[second].model_x, spaces[second].model_x)  # the other fold reads it


def test_content_path_is_trained_only_when_asked(zoo: tuple) -> None:
    """By default seen models are scored by the linear read-out alone; ``content_path=True`` trains the attention."""
    models, records, tasks = zoo
    plain = train_scorer(records, models, tasks, config=FAST)
    assert all(not m.out.weight.any() and not m.out.bias.any() for m in plain.member_modules)
    attended = train_scorer(records, models, tasks, config=replace(FAST, content_path=True))
    assert all(m.out.weight.any() for m in attended.member_modules)
    tokens = ptm_tokens(models)
    task = tasks["animals"]
    assert plain.score_tokens(tokens, task) != pytest.approx(attended.score_tokens(tokens, task))
