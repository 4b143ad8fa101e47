"""The task-aware model: its fit against independent references, its file, and a task read from its words."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from hf_spider.cli import main
from hf_spider.hub.index import write_index
from hf_spider.hub.records import ModelRecord
from hf_spider.scorer.protocols import load_mteb_records, mteb_dir, mteb_task_group, readable_name
from hf_spider.scorer.ranker import SpiderRanker
from hf_spider.scorer.task_aware import (
    TaskAwareConfig,
    TaskAwareModel,
    TaskFeatures,
    als,
    fit_task_aware,
    normal_scores,
    select_config,
)
from hf_spider.tokens.build import task_tokens_from_labels
from hf_spider.tokens.task import TaskDescription


def test_als_recovers_a_fully_observed_low_rank_matrix() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 25))
    u, v = als(truth, rank=3, l2=1e-6, iters=200, seed=1)
    np.testing.assert_allclose(u @ v.T, truth, atol=1e-3)


@pytest.mark.parametrize("dim", [3, 40])  # more rows than features (primal), fewer (dual)
def test_feature_map_is_scikit_learns_weighted_ridge(dim) -> None:
    from sklearn.linear_model import Ridge

    from hf_spider.scorer.task_aware import _Factors, _fit_map

    rng = np.random.default_rng(0)
    tasks = [f"t{i}" for i in range(12)]
    features = {}
    for i, t in enumerate(tasks):  # half the tasks have two views: three rows of weight 1/3 each
        views = {"description": rng.normal(size=dim)}
        if i % 2:
            views["name"] = rng.normal(size=dim)
        features[t] = TaskFeatures({k: v / np.linalg.norm(v) for k, v in views.items()})
    factors = _Factors(b=np.zeros(5), u=np.zeros((5, 2)), v=rng.normal(size=(12, 2)))
    coef, intercept = _fit_map(factors, tasks, features, alpha=0.7)
    rows = [
        (r, factors.v[j], 1 / len(features[t].training_rows()))
        for j, t in enumerate(tasks)
        for r in features[t].training_rows()
    ]
    x, y, w = (np.array([r[i] for r in rows]) for i in range(3))
    reference = Ridge(alpha=0.7).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(coef, reference.coef_, atol=1e-8)
    np.testing.assert_allclose(intercept, reference.intercept_, atol=1e-8)


def test_normal_scores_are_the_normal_quantiles_of_each_tasks_ranks() -> None:
    from statistics import NormalDist

    z = np.array([[0.3, np.nan], [-2.0, 1.0], [5.0, 1.0], [np.nan, -1.0], [0.1, 4.0]])
    scores = normal_scores(z)
    quantile = NormalDist().inv_cdf
    # column 0: four records, ranks 3, 1, 4, 2; column 1: four records, the two 1.0 tie on ranks 2 and 3
    expected0 = [quantile((r - 0.5) / 4) for r in (3, 1, 4, 2)]
    expected1 = [quantile((r - 0.5) / 4) for r in (2.5, 2.5, 1, 4)]
    np.testing.assert_allclose(scores[[0, 1, 2, 4], 0], expected0, atol=1e-12)
    np.testing.assert_allclose(scores[[1, 2, 3, 4], 1], expected1, atol=1e-12)
    assert np.isnan(scores[3, 0]) and np.isnan(scores[0, 1])


def test_the_fit_reads_each_task_by_its_ranking_only() -> None:
    """A monotone change of one task's scores (an outlier pushed far out, a rescale) leaves the model as it was."""
    z, features, _ = _two_kinds_of_task()
    bent = z.copy()
    bent["a1"] = np.exp(3 * bent["a1"])  # same order, a long upper tail
    bent.loc[bent["b2"].idxmin(), "b2"] = -50.0  # one broken model, still last
    config = TaskAwareConfig(rank=2, ridge_alpha=0.1)
    np.testing.assert_allclose(
        fit_task_aware(bent, features, config).predict(features["a0"]),
        fit_task_aware(z, features, config).predict(features["a0"]),
        atol=1e-10,
    )


def _two_kinds_of_task(seed: int = 0) -> tuple[pd.DataFrame, dict[str, TaskFeatures], np.ndarray]:
    """30 models; tasks of kind A follow one order of the models, tasks of kind B the reverse order; a task's only
    view says which kind it is (plus noise)."""
    rng = np.random.default_rng(seed)
    order = rng.normal(size=30)
    columns, features = {}, {}
    for kind, sign, axis in (("a", 1.0, 0), ("b", -1.0, 1)):
        for i in range(8):
            name = f"{kind}{i}"
            columns[name] = sign * order + 0.1 * rng.normal(size=30)
            view = 0.05 * rng.normal(size=4)
            view[axis] += 1.0
            features[name] = TaskFeatures({"description": view / np.linalg.norm(view)})
    z = pd.DataFrame(columns, index=[f"m{i}" for i in range(30)])
    return (z - z.mean()) / z.std(), features, order


def test_a_held_out_task_is_ranked_by_what_its_features_say_it_is() -> None:
    z, features, order = _two_kinds_of_task()
    model = fit_task_aware(z.drop(columns=["a0", "b0"]), features, TaskAwareConfig(rank=2, ridge_alpha=0.1))
    by_row = pd.Series(order, index=z.index).reindex(model.model_ids).to_numpy()
    assert kendalltau(model.predict(features["a0"]), by_row).statistic > 0.8
    assert kendalltau(model.predict(features["b0"]), -by_row).statistic > 0.8
    static = model.predict(None)  # the mean task: half one order, half the other
    assert abs(kendalltau(static, by_row).statistic) < 0.5


def test_each_protocol_reads_a_task_through_its_own_map() -> None:
    z, features, _ = _two_kinds_of_task()
    protocol_of = {t: "finetune" if t.startswith("a") else "linear_probe" for t in z.columns}
    model = fit_task_aware(z, features, TaskAwareConfig(rank=2), protocol_of=protocol_of)
    assert model.protocols == ("finetune", "linear_probe")
    assert model.coef.shape[:2] == (2, 2) and model.mean_factor.shape == (2, 2)


def test_inner_folds_hold_out_only_the_scored_protocols_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_spider.scorer import task_aware

    z, features, _ = _two_kinds_of_task()
    protocol_of = {t: "finetune" if t.startswith("a") else "linear_probe" for t in z.columns}
    held_out: set[str] = set()
    fit = task_aware.fit_task_aware

    def spy(train: pd.DataFrame, *args: object, **kwargs: object) -> TaskAwareModel:
        held_out.update(set(z.columns) - set(train.columns))
        return fit(train, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(task_aware, "fit_task_aware", spy)
    space = {"rank": (2,), "ridge_alpha": (0.1,)}
    select_config(z, features, lambda t: t, space=space, protocol_of=protocol_of, scored={"linear_probe"})
    assert held_out and {protocol_of[t] for t in held_out} == {"linear_probe"}
    held_out.clear()
    select_config(z, features, lambda t: t, space=space, protocol_of=protocol_of)
    assert {protocol_of[t] for t in held_out} == {"finetune", "linear_probe"}  # by default every protocol


def test_saved_model_loads_back_and_predicts_the_same(tmp_path) -> None:
    z, features, _ = _two_kinds_of_task()
    declared = {("m0", "a1"), ("m3", "a1"), ("m3", "b2")}
    model = fit_task_aware(
        z, features, TaskAwareConfig(rank=2), protocol_of=dict.fromkeys(z.columns, "finetune"), declared=declared
    )
    model.save(tmp_path / "task_aware.npz")
    loaded = TaskAwareModel.load(tmp_path / "task_aware.npz")
    assert loaded.model_ids == model.model_ids and loaded.config == model.config
    assert loaded.declared_effect == model.declared_effect != 0.0
    marks = model.declared_on(["a1"], declared)
    np.testing.assert_allclose(loaded.predict(features["a1"], marks), model.predict(features["a1"], marks))


def test_mteb_records_keep_their_protocol_and_a_priori_groups() -> None:
    records = load_mteb_records()
    assert set(records.scores.protocol) == {"linear_probe"}
    assert records.scores.groupby(["model", "task"]).size().max() == 1
    assert mteb_task_group("MTOPIntentClassification") == mteb_task_group("MTOPDomainClassification") == "MTOP"
    assert mteb_task_group("WikipediaChemFieldsClassification") == "ChemTEB"
    assert mteb_task_group("ImdbClassification") == "ImdbClassification"
    assert readable_name("TweetSentimentClassification") == "Tweet Sentiment"


def test_every_label_name_list_has_as_many_names_as_mteb_counts_classes() -> None:
    # MTEB's own task metadata (tasks.csv, n_classes) is the reference for the label names sourced from dataset cards
    tasks = pd.read_csv(mteb_dir() / "tasks.csv").set_index("task")
    named = {name: text.label_names for name, text in load_mteb_records().tasks.items() if text.label_names}
    assert len(named) >= 41
    assert {name: len(set(labels)) for name, labels in named.items()} == {
        name: int(tasks.n_classes[name]) for name in named
    }


def test_a_file_name_is_read_without_its_suffix_and_a_generic_one_not_at_all() -> None:
    from hf_spider.scorer.protocols import TaskText
    from hf_spider.scorer.task_aware import text_features

    embedded: list[str] = []

    def embed(strings):
        embedded.extend(strings)
        return np.ones(3) / np.sqrt(3)

    def views(name: str) -> set[str]:
        return set(text_features(TaskText(name, "text", "", ("spam", "ham")), embed).views)

    assert views("support_tickets.csv") == {"labels", "name"} and embedded[-1] == "support tickets"
    for generic in ("train.csv", "data.jsonl", "my_data", "labels", "Test"):  # a user's file names, the CLI's default
        assert views(generic) == {"labels"}, generic


@pytest.fixture(scope="module")
def encoders() -> list[ModelRecord]:
    """Twelve MTEB encoders, each with records on at least 20 tasks."""
    counts = load_mteb_records().scores.model.value_counts()
    return [ModelRecord(repo_id=m, pipeline_tag="feature-extraction") for m in sorted(counts.index[counts >= 20])[:12]]


DESCRIPTIONS = (
    "classify Wikipedia articles about chemistry into their sub-field",
    "detect toxic comments in online conversations",
)


def test_two_descriptions_give_two_orders_of_the_models_with_records(encoders) -> None:
    ranker = SpiderRanker.from_pretrained()
    assert ranker.task_aware is not None
    orders = []
    for words in DESCRIPTIONS:
        task = task_tokens_from_labels(TaskDescription(name="task", modality="text", label_names=(), description=words))
        explained = ranker.explain(task, encoders)
        assert set(explained.evidence) == {"records"}
        orders.append(list(np.argsort(-explained.scores)))
    assert orders[0] != orders[1]


def test_cli_ranks_from_a_description_alone(capsys, encoders, tmp_path) -> None:
    index = write_index(encoders, tmp_path / "encoders.jsonl")
    orders = []
    for words in DESCRIPTIONS:
        code = main(["rank", "--task", words, "--modality", "text", "--candidates", str(index), "--format", "json"])
        out, _ = capsys.readouterr()
        assert code == 0
        orders.append([e["model_id"] for e in json.loads(out)["entries"]])
    assert orders[0] != orders[1]


def test_pipeline_reads_the_description_as_a_call_argument_and_in_the_task(encoders) -> None:
    import hf_spider

    selector = hf_spider.pipeline("model-selection", candidates=encoders, top_k=0)
    labels = {"labels": ["negative", "positive"], "modality": "text"}
    orders = [[e.model_id for e in selector(labels, description=words).entries] for words in DESCRIPTIONS]
    assert orders[0] != orders[1]
    in_task = selector({"description": DESCRIPTIONS[0], "modality": "text"})
    assert [e.model_id for e in in_task.entries] != orders[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "sort emails"], "--task without --dataset or --labels needs --modality"),
        (["--task", "  ", "--modality", "text"], "--task is empty"),
        (["--modality", "text"], "pass --dataset, --labels or --task"),
    ],
)
def test_cli_task_errors_name_the_fix(capsys, argv, message) -> None:
    assert main(["rank", *argv]) == 2
    _, err = capsys.readouterr()
    assert message in err and "Traceback" not in err


def test_words_join_the_label_names_of_a_task() -> None:
    from hf_spider.ranking import read_task

    labels = TaskDescription(name="reviews", modality="text", label_names=("negative", "positive"))
    tokens = read_task(labels, task_text="sentiment of product reviews").tokens
    assert tokens.description.description == "sentiment of product reviews"
    assert tokens.description.label_names == ("negative", "positive")
    assert tokens.label_embeddings is not None and len(tokens.label_embeddings) == 2


def test_generic_label_names_give_a_task_no_label_view() -> None:
    from hf_spider.scorer.protocols import TaskText
    from hf_spider.scorer.task_aware import text_features

    embedded: list[list[str]] = []

    def embed(strings):
        embedded.append(list(strings))
        return np.ones(3) / np.sqrt(3)

    generic = text_features(TaskText("labels", "text", "", ("LABEL_0", "LABEL_1", "class 2")), embed)
    assert generic.views == {} and generic.vector() is None  # read as the static list
    mixed = text_features(TaskText("labels", "text", "", ("LABEL_0", "not_spam", "spam")), embed)
    assert set(mixed.views) == {"labels"}
    assert embedded == [["not spam", "spam"]]


def test_models_declaring_training_on_the_task_are_lifted_by_the_fitted_effect() -> None:
    z, features, _ = _two_kinds_of_task()
    rng = np.random.default_rng(7)
    declared = {(m, t) for m in z.index for t in z.columns if rng.random() < 0.2}
    lifted = z.copy()
    for m, t in declared:
        lifted.loc[m, t] += 1.5  # a model beats its usual place on the tasks whose data it was trained on
    model = fit_task_aware(lifted, features, TaskAwareConfig(rank=2), declared=declared)
    assert model.declared_effect > 0.3
    marks = model.declared_on(["a1"], declared)
    assert {m for m, marked in zip(model.model_ids, marks, strict=True) if marked} == {
        m for m, t in declared if t == "a1"
    }
    np.testing.assert_allclose(
        model.predict(features["a1"], marks) - model.predict(features["a1"]), model.declared_effect * marks
    )
    plain = fit_task_aware(lifted, features, TaskAwareConfig(rank=2))
    assert plain.declared_effect == 0.0
    no_lift = fit_task_aware(z, features, TaskAwareConfig(rank=2), declared=declared)  # declared, but no better
    assert abs(no_lift.declared_effect) < 0.15


def test_a_task_is_matched_to_the_mteb_task_it_is() -> None:
    import csv

    from hf_spider.scorer.protocols import mteb_dir, mteb_tasks_named

    with open(mteb_dir() / "tasks.csv") as f:
        dataset = {row["task"]: row["hf_dataset"] for row in csv.DictReader(f)}
    assert dataset["Banking77Classification"] == "mteb/banking77"
    assert mteb_tasks_named([], ["PolyAI/banking77"]) == {"Banking77Classification"}  # MTEB's re-upload of it
    assert mteb_tasks_named(["labels"], ["mteb/banking77:default"]) == {"Banking77Classification"}
    assert mteb_tasks_named(["banking77classification"]) == {"Banking77Classification"}
    assert mteb_tasks_named(["labels", None], [None, "my-org/support-tickets"]) == set()
    assert mteb_tasks_named(["banking77", "PolyAI/banking77"]) == set()  # a name is matched to task names only


def test_rank_lifts_the_encoders_that_declare_training_on_the_dataset(encoders) -> None:
    from hf_spider.scorer.protocols import declared_training

    trained = {m for m, t in declared_training() if t == "Banking77Classification"}
    extra = [m for m in sorted(trained) if m not in {e.repo_id for e in encoders}][:4]
    candidates = [*encoders, *(ModelRecord(repo_id=m, pipeline_tag="feature-extraction") for m in extra)]
    ranker = SpiderRanker.from_pretrained()
    assert ranker.task_aware is not None and ranker.task_aware.declared_effect > 0
    labels = ("activate my card", "card arrival", "exchange rate")
    scores = {}
    # the task's samples come from the Hub dataset MTEB re-uploaded, or from a local folder that only shares its name
    for source, local in ((None, False), ("PolyAI/banking77", False), ("banking77", True)):
        description = TaskDescription(name="labels", modality="text", label_names=labels, source=source, local=local)
        task = task_tokens_from_labels(description)
        name = str(source)
        explained = ranker.explain(task, candidates)
        scores[name] = dict(zip((c.repo_id for c in candidates), explained.scores, strict=True))
        details = dict(zip((c.repo_id for c in candidates), explained.details, strict=True))
        said = {m for m, d in details.items() if "declares training on Banking77Classification (MTEB metadata)" in d}
        assert said == ({c.repo_id for c in candidates} & trained if source and not local else set())
    for m in scores["None"]:
        moved = scores["PolyAI/banking77"][m] - scores["None"][m]
        assert moved > 0 if m in trained else moved == pytest.approx(0.0)
        assert scores["banking77"][m] == pytest.approx(scores["None"][m])
