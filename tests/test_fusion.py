"""The stage-two fusion (:func:`hf_spider.rerank.fuse`) and its fit on the bundled validation table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from hf_spider.outputs.shortlist import EVIDENCE_KINDS
from hf_spider.rerank import FusionParameters, fuse
from hf_spider.rerank.fusion import (
    DEFAULT_ESTIMATORS,
    FUSION_PARAMETERS,
    MIN_AGREEMENT,
    normal_scores,
    stage_one_reliability,
)
from hf_spider.rerank.validation import (
    ESTIMATOR_SETS,
    OTHER_TASKS,
    Scenario,
    _Prepared,
    _PreparedHalving,
    build_scenarios,
    estimator_columns,
    estimator_credits,
    fit_fusion,
    fused_order_scores,
    halving_column,
    halving_order_scores,
    load_validation_table,
    parameters_from_grid,
    weighted_tau,
)

# ----------------------------------------------------------------------------------------------- fuse


@pytest.mark.parametrize("k", [2, 3, 8])
def test_estimators_reorder_what_stage_one_knows_only_by_size(k) -> None:
    stage_one = np.arange(k, 0, -1, dtype=float)  # stage one: 0 best
    logme = np.arange(k, dtype=float)  # the forward passes say the opposite
    weak = fuse(stage_one, {"logme": logme}, evidence=["size"] * k)
    assert weak.order.tolist() == list(range(k - 1, -1, -1))
    without_agreement = replace(FUSION_PARAMETERS, agreement=False)
    strong = fuse(stage_one, {"logme": logme}, confidence=[0.9] * k, parameters=without_agreement)
    assert strong.order.tolist() == list(range(k))
    assert (weak.stage_one_share < 0.5).all() and (strong.stage_one_share > 0.5).all()
    # with the agreement bound, samples that reverse a confident stage one overrule it once it can be measured
    with_agreement = replace(FUSION_PARAMETERS, agreement=True)
    bounded = fuse(stage_one, {"logme": logme}, confidence=[0.9] * k, parameters=with_agreement)
    assert bounded.order.tolist() == (list(range(k - 1, -1, -1)) if k >= MIN_AGREEMENT else list(range(k)))


def test_with_two_candidates_the_evidence_decides_whether_they_swap() -> None:
    params = FUSION_PARAMETERS
    swapped = [e for e in ("records", "lineage", "facts", "content", "size") if fuse([1, 0], {"logme": [0, 1]},
               evidence=[e, e]).order[0] == 1]  # fmt: skip
    # stage one is kept exactly where it is credited more than the estimator
    assert swapped == [e for e, rho in params.evidence.items() if rho < params.estimators["logme"]]
    assert swapped  # a pair can swap at all (the fixed z-score mix of before never could)


def test_each_candidate_is_credited_by_its_own_evidence() -> None:
    """A mixed pool: the model known by records keeps its place, the one known by size moves with its forward pass."""
    stage_one = [4.0, 3.0, 2.0, 1.0]
    logme = [1.0, 2.0, 3.0, 4.0]
    params = FusionParameters(
        evidence={"records": 0.9, "lineage": 0.5, "facts": 0.5, "content": 0.1, "size": 0.0},
        estimators={"logme": 0.5},
        unknown_estimator=0.25,
    )
    out = fuse(stage_one, {"logme": logme}, evidence=["records", "size", "size", "size"], parameters=params)
    assert out.order[0] == 0  # strong records beat every forward pass
    assert out.order.tolist()[1:] == [3, 2, 1]  # the rest follow the estimator
    np.testing.assert_allclose(out.stage_one_reliability, [0.9, 0, 0, 0])


def test_a_score_that_states_nothing_only_breaks_ties() -> None:
    out = fuse([3.0, 2.0, 1.0], {"logme": [0.5, 0.5, 0.9]})
    assert out.order.tolist() == [2, 0, 1]  # the estimator decides; its tie goes to stage one's better candidate
    assert not out.stage_one_reliability.any()


def test_evidence_wins_over_confidence_which_is_clipped() -> None:
    """The evidence credits are fitted for the fusion; a confidence counts only where no evidence is given."""
    rho = stage_one_reliability(3, evidence=["size", "records", None], confidence=[0.7, None, 1.5])
    np.testing.assert_allclose(rho, [FUSION_PARAMETERS.evidence["size"], FUSION_PARAMETERS.evidence["records"], 0.95])


def test_estimator_direction_comes_from_the_registry() -> None:
    # PACTran is lower-is-better: its smallest value is the best candidate
    out = fuse([0.0, 0.0, 0.0], {"pactran": [3.0, 1.0, 2.0]})
    assert out.order.tolist() == [1, 2, 0]


def test_several_estimators_form_one_view_weighted_by_their_credit() -> None:
    params = replace(FUSION_PARAMETERS, estimators={"logme": 0.5, "hscore": 0.1}, unknown_estimator=0.25)
    scores = {"logme": [1.0, 2.0, 3.0], "hscore": [3.0, 2.0, 1.0], "my_estimator": [1, 2, 3]}
    out = fuse([0, 0, 0], scores, parameters=params)
    assert sum(out.estimator_weights.values()) == pytest.approx(1.0)
    assert out.estimator_weights["logme"] > out.estimator_weights["my_estimator"] > out.estimator_weights["hscore"]
    assert out.order[0] == 2  # LogME and the unknown one outvote the weakly credited H-score


def test_query_time_agreement_bounds_stage_one_by_what_the_samples_support() -> None:
    """Under the fusion's model two views correlate as rho_s * rho_e, so stage one is credited at most r / rho_e."""
    stage_one = [5.0, 4.0, 3.0, 2.0, 1.0]
    params = replace(FUSION_PARAMETERS, evidence={**FUSION_PARAMETERS.evidence, "records": 0.9}, agreement=True)
    credit = params.estimators["logme"]
    records = ["records"] * 5
    contradicted = fuse(stage_one, {"logme": [1.0, 2.0, 3.0, 4.0, 5.0]}, evidence=records, parameters=params)
    assert contradicted.order.tolist() == [4, 3, 2, 1, 0]
    np.testing.assert_allclose(contradicted.stage_one_reliability, 0.0, atol=1e-12)  # r = -1: nothing
    z = norm.ppf((np.arange(5, 0, -1) - 0.5) / 5)  # normal scores of ranks 5..1
    for swapped, kept in (([0, 1, 2, 4, 3], [0, 1, 2, 3, 4]), ([1, 3, 0, 4, 2], None)):
        logme = 5.0 - np.argsort(swapped)  # logme ranks the candidates in the order `swapped`
        out = fuse(stage_one, {"logme": logme}, evidence=records, parameters=params)
        r = np.corrcoef(z, normal_scores(logme))[0, 1]
        np.testing.assert_allclose(out.stage_one_reliability, min(0.9, max(r, 0.0) / credit, 0.95))
        if kept is not None:  # r / credit = 1.7 > 0.9: stage one keeps its credit and its order
            assert r / credit > 0.9 and out.order.tolist() == kept
    low = replace(params, evidence={**params.evidence, "records": 0.1})
    assert fuse(
        stage_one, {"logme": [5.0, 4.0, 3.0, 1.0, 2.0]}, evidence=records, parameters=low
    ).stage_one_reliability[0] == pytest.approx(0.1)  # the bound never raises a credit
    few = fuse(stage_one[:3], {"logme": [1.0, 2.0, 3.0]}, evidence=records[:3], parameters=params)
    np.testing.assert_allclose(few.stage_one_reliability, 0.9)  # 3 candidates: no agreement is measured


def test_floating_point_noise_is_no_order() -> None:
    """H-score is exactly C - 1 when features outnumber samples; its last digits differ with the batch a process ran.
    Such values are ties and leave the order to the other estimators, whatever their noise."""
    logme = [-0.602, -0.616, -0.615, -0.629]
    orders = set()
    for noise in ([0.0, 1.8e-15, -1.8e-15, 1e-15], [-4e-16, 1e-15, 0.0, -1e-15]):
        out = fuse([0.0] * 4, {"logme": logme, "hscore": list(3.0 + np.array(noise))})
        orders.add(tuple(out.order.tolist()))
        assert out.estimator_weights == {"logme": 1.0, "hscore": 0.0}
    assert orders == {(0, 2, 1, 3)}  # LogME's order, both times
    np.testing.assert_array_equal(normal_scores([3.0, 3.0 + 2e-15, 3.0 - 2e-15]), 0.0)
    assert normal_scores([1.0, np.inf, 2.0]).argsort().tolist() == [0, 2, 1]  # an infinite value does not tie the rest


def test_an_estimator_only_one_candidate_has_does_not_pull_it_to_the_middle() -> None:
    alone = fuse([0.0] * 3, {"logme": [3.0, 2.0, 1.0]})
    with_nce = fuse([0.0] * 3, {"logme": [3.0, 2.0, 1.0], "nce": [-1.4, np.nan, np.nan]})
    np.testing.assert_allclose(with_nce.scores, alone.scores)


def test_missing_estimator_values_leave_that_candidate_to_stage_one() -> None:
    out = fuse([3.0, 2.0, 1.0], {"logme": [np.nan, 0.1, 0.9]}, confidence=[0.3, 0.3, 0.3])
    assert out.scores[0] == pytest.approx(0.3 / (1 - 0.09) * normal_scores([3.0, 2.0, 1.0])[0] / (1 + 0.09 / 0.91))
    assert out.order.tolist() == [0, 2, 1]
    assert out.measured.tolist() == [False, True, True]


def test_an_unregistered_estimator_is_read_higher_is_better_and_said_so(caplog) -> None:
    with caplog.at_level("WARNING", logger="hf_spider.rerank.fusion"):
        out = fuse([0.0, 0.0, 0.0], {"PACTran": [3.0, 2.0, 1.0]}, evidence=["size"] * 3)
    assert out.order.tolist() == [0, 1, 2]  # as given: the registered 'pactran' is lower-is-better, this name is not
    assert "estimator 'PACTran' is not registered: its values are read as higher-is-better" in caplog.text


@pytest.mark.parametrize(
    ("stage_one", "estimators", "options", "message"),
    [
        ([1.0], {}, {}, "needs at least one estimator"),
        ([1.0, 2.0], [0.1, 0.9], {}, "needs at least one estimator"),  # a list, not a mapping
        ([1.0, 2.0], {"logme": [1.0]}, {}, "has 1 values for 2 candidates"),
        ([1.0, 2.0], {"logme": [1.0, 2.0]}, {"evidence": ["gut", None]}, "unknown evidence 'gut'"),
        ([np.nan, 1.0, 2.0], {"logme": [0.3, 0.1, 0.2]}, {}, "stage_one is NaN at position(s) 0"),
        (1.0, {"logme": [0.1]}, {}, "stage_one must be a list of K numbers"),
        (["a", "b"], {"logme": [0.1, 0.2]}, {}, "stage_one must be numbers"),
        ([1.0, 2.0], {"logme": ["x", 0.2]}, {}, "estimator 'logme' values must be a list of numbers"),
        ([1.0, 2.0], {"logme": [0.1, 0.2]}, {"confidence": ["a", "b"]}, "confidence 'a' of candidate 0 is no number"),
        ([1.0, 2.0], {"logme": [[1.0, 2.0], [3.0, 4.0]]}, {}, "must be a list of K numbers, got shape (2, 2)"),
        ([1.0, 2.0], {"logme": [0.1, 0.2]}, {"evidence": [["size"], "size"]}, "unknown evidence ['size']"),
        ([3.0, 2.0, 1.0], {"logme": [-np.inf, 0.2, 0.1]}, {}, "estimator 'logme' is infinite at position(s) 0"),
    ],
)
def test_bad_inputs_name_the_fix(stage_one, estimators, options, message) -> None:
    from hf_spider.errors import FusionInputError

    with pytest.raises(FusionInputError) as info:
        fuse(stage_one, estimators, **options)
    assert message in str(info.value)


def test_a_stage_one_of_minus_infinity_is_last_not_refused() -> None:
    """The size prior scores a model of unknown size ``-inf``: a place in the order, unlike NaN."""
    out = fuse([2.0, -np.inf, 1.0], {"logme": [0.5, 0.5, 0.5]}, evidence=["size"] * 3)
    assert out.order.tolist() == [0, 2, 1]


def test_normal_scores_are_rank_based() -> None:
    x = normal_scores([10.0, -3.0, 10.0, 2.0])
    assert x[0] == x[2] > x[3] > x[1]  # ties share their mean rank
    np.testing.assert_allclose(normal_scores([1.0, 100.0, 5.0]), normal_scores([1.0, 3.0, 2.0]))  # scale-free
    assert normal_scores([1.0, 2.0, 3.0, 4.0]).sum() == pytest.approx(0.0, abs=1e-12)
    assert normal_scores([5.0]).tolist() == [0.0]


# ----------------------------------------------------------------------------------------------- the fit


def _synthetic_table(noise_on: str, *, targets: int = 6, models: int = 24, seed: int = 1) -> pd.DataFrame:
    """Targets whose accuracy follows either a model quality shared by every target (then the records-based prior is
    right and the estimator is noise) or a per-target effect only a forward pass sees (then the opposite)."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=models)
    rows = []
    for t in range(targets):
        effect = rng.normal(size=models)
        for m in range(models):
            shared = noise_on == "estimator"
            accuracy = quality[m] + 0.1 * effect[m] if shared else effect[m]
            estimate = rng.normal() if shared else effect[m] + 0.1 * rng.normal()
            rows.append(
                {
                    "source": "synthetic",
                    "modality": "image",
                    "target": f"t{t}",
                    "model": f"m{m:02d}",
                    "model_type": ("vit", "resnet")[m % 2],
                    "num_parameters": 1000 + m,
                    "accuracy": accuracy,
                    "logme": estimate,
                    "reg_hscore": estimate + 0.01 * rng.normal(),
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("noise_on", ["estimator", "prior"])
def test_the_fit_credits_whichever_signal_predicts_accuracy(noise_on) -> None:
    grid = {"estimator": (0.3, 0.7), "records": (0.2, 0.8), "content": (0.0,), "size": (0.0,)}
    fit = fit_fusion(_synthetic_table(noise_on), grid=grid, top_ks=())
    credit = fit.parameters
    if noise_on == "estimator":
        assert credit.evidence["records"] > credit.estimators["logme"]
    else:
        assert credit.evidence["records"] < credit.estimators["logme"]
    seen = fit.loto["synthetic"]["seen"]
    assert seen["fusion"] >= max(seen["stage_one"], seen["estimator"]) - 0.05


def test_the_fast_path_of_the_fit_is_fuse() -> None:
    table = _synthetic_table("prior", targets=3, models=10)
    rng = np.random.default_rng(0)
    for per_class in (2, 4):  # the successive-halving rounds' values: noisier than the full draw's
        for name in ("logme", "reg_hscore"):
            table[halving_column(name, per_class)] = table[name] + rng.normal(scale=2.0 / per_class, size=len(table))
    scenarios = build_scenarios(table)
    assert all(set(s.rounds) == {2, 4} for s in scenarios)
    relative = {"logme": 1.0, "reg_hscore": 0.5}
    for agreement in (0.0, 1.0):
        point = {"estimator": 0.5, "records": 0.3, "content": 0.1, "size": 0.0, "agreement": agreement}
        for estimators in (("logme",), ("logme", "reg_hscore")):
            params = parameters_from_grid(point, estimators, relative)
            views = {(estimators, 0.5): estimator_credits(estimators, 0.5, relative)}
            for scenario in scenarios:
                for k in (2, 4, None):
                    fast = _Prepared.of(scenario, views, k).tau(params, (estimators, 0.5))
                    slow = weighted_tau(scenario.accuracy, fused_order_scores(scenario, estimators, params, k))
                    assert fast == slow
                fast = _PreparedHalving.of(scenario, views).tau(params, (estimators, 0.5))
                slow = weighted_tau(scenario.accuracy, halving_order_scores(scenario, estimators, params))
                assert fast == slow


def test_successive_halving_drops_a_candidate_its_first_round_ranks_low() -> None:
    """``rank --dataset``'s schedule as the validation replays it: 8 candidates on 2 samples per class, the best 4 on
    4, the best 2 on all 8; a candidate the first round ranks last never comes back, whatever the full draw says."""
    logme = {
        2: np.array([8, 7, 6, 5, 4, 3, 2, -10.0]),  # round 1: candidate 7 last
        4: np.array([1, 2, 3, 4, 0, 0, 0, 0.0]),  # round 2 (of 0..3): 3, 2, 1, 0
        8: np.array([5, 6, 1, 2, 0, 0, 0, 100.0]),  # the full draw: 7 first, then (of 3, 2) 3 before 2
    }
    scenario = Scenario(
        group="g",
        target="t",
        kind="size",
        stage_one=np.arange(8, 0, -1, dtype=np.float64),  # stage one: 0 best
        evidence=("size",) * 8,
        estimators={"logme": logme[8]},
        accuracy=np.arange(8, dtype=np.float64),
        rounds={2: {"logme": logme[2]}, 4: {"logme": logme[4]}},
    )
    params = FusionParameters(
        evidence=dict.fromkeys(EVIDENCE_KINDS, 0.0), estimators={"logme": 0.5}, unknown_estimator=0.5
    )
    halving = halving_order_scores(scenario, ("logme",), params)
    assert np.argsort(-halving).tolist() == [3, 2, 1, 0, 4, 5, 6, 7]  # the last round, then each dropped half
    everything = fused_order_scores(scenario, ("logme",), params)  # all 8 on the full draw
    assert np.argsort(-everything)[0] == 7


def test_the_other_task_stand_in_is_another_targets_measured_accuracy() -> None:
    table = _synthetic_table("prior", targets=6, models=10)
    truth = {t: rows.sort_values("model").accuracy.to_numpy() for t, rows in table.groupby("target")}
    scenarios = build_scenarios(table)
    for target, accuracy in truth.items():
        others = [s for s in scenarios if s.target == target and s.kind == "other"]
        assert len(others) == min(OTHER_TASKS, len(truth) - 1)
        used = set()
        for s in others:  # each stand-in is exactly one other target's accuracies, every candidate recorded there
            match = [t for t, a in truth.items() if t != target and np.array_equal(a, s.stage_one)]
            assert len(match) == 1 and set(s.evidence) == {"records"}
            used.add(match[0])
            np.testing.assert_array_equal(s.accuracy, accuracy)
        assert len(used) == len(others)  # drawn without repetition


@pytest.mark.slow
def test_shipped_parameters_are_the_fit_on_the_bundled_table_and_beat_stage_one() -> None:
    """The acceptance on the TransferGraph records: fused with the recorded estimator, stage one (the collaborative
    prior, never seeing the target) gets better on both modalities, every target scored leave-one-target-out."""
    fit = fit_fusion()
    assert fit.parameters == FUSION_PARAMETERS and fit.estimators == DEFAULT_ESTIMATORS
    for group in ("transfergraph/image", "transfergraph/text"):
        for kind in ("seen", "mixed"):
            m = fit.loto[group][kind]
            assert m["fusion"] >= m["stage_one"] and m["fusion"] >= m["logme"], (group, kind, m)


def test_the_bundled_table_holds_every_benchmark_and_no_zoo_target_among_the_meta_tasks() -> None:
    table = load_validation_table()
    assert table.groupby("source").target.nunique().to_dict() == {"transfergraph": 16, "zoo": 7, "zoo-meta": 34}
    meta_sources = {t.split(":")[0] for t in table[table.source == "zoo-meta"].target}
    assert not meta_sources & set(table[table.source == "zoo"].target)  # drawn from the zoo's sources only
    assert table.logme.notna().all() and table.accuracy.notna().all()
    # the zoo and its meta tasks record every estimator, so each set the validation compares is scored on both, and
    # every member of a set on the first 2 and 4 samples per class too (successive halving's early rounds)
    estimators = estimator_columns(table)
    rounds = [halving_column(e, n) for e in {e for s in ESTIMATOR_SETS for e in s} for n in (2, 4)]
    assert len(estimators) == 11 and set(rounds) <= set(table.columns)
    assert table[table.source != "transfergraph"][[*estimators, *rounds]].notna().all().all()
