"""Fit and validate the fusion of :mod:`hf_spider.rerank.fusion` on recorded estimator values, leave-one-target-out.

The table (``hf_spider/data/fusion_validation.csv``, rebuilt by ``scripts/build_fusion_validation.py``) holds, per
(source, target, model), the fine-tuned accuracy and forward-pass estimator values of four benchmarks: the
TransferGraph records' recorded LogME / Reg-H-Score (image and text, 8 targets each), and every registered estimator
on tasks drawn from the zoo's *source* domains (``zoo-meta``, the zoo's meta-training records) and on the 7 targets
of the benchmark zoo. The zoo and zoo-meta also record the members of every compared estimator set on the first 2
and 4 of their 8 samples per class (``logme@2``, ...): the probe sets of ``rank --dataset``'s early
successive-halving rounds.
No trained stage one is replayed (it would change with every retrain); stage one is stood in for by rankers that read
nothing of the target, each with the evidence it would report:

* ``seen``: the collaborative prior (a model's mean normalised accuracy over the *other* targets of its source),
  evidence ``records`` for every candidate;
* ``mixed``: the same with a quarter of the models unseen (their records hidden, in 4 seeded folds): an unseen model
  falls back to the mean of its architecture family (evidence ``content``) or, with no family seen, the pool mean
  (evidence ``size``), as :class:`~hf_spider.rankers.baselines.CollaborativePrior` does;
* ``size``: log parameter count alone, evidence ``size``;
* ``other``: the measured accuracies of another task of the same benchmark (up to :data:`OTHER_TASKS` seeded
  draws; evidence ``records``, and a candidate not recorded there gets the mean, evidence ``size``): a stage one
  that is right about *some* task but not necessarily this one, what a learned scorer risks on a task unlike those
  it learned from. It measures how far the fusion follows such a stage one where the samples contradict it.

Every scenario of a target is scored by ``scipy.stats.weightedtau`` against the measured accuracy. An option (an
estimator set, credits on a small grid, the agreement switch) is scored by the mean over benchmarks (groups) of the
benchmark's mean over targets (TransferGraph targets weighted by accuracy spread, max - mean, as the paper's tables
are) of the mean over scenarios, each scenario re-ranked at every depth of :data:`FIT_KS` (the stage-one top 2, top
4, all; the rest kept in stage-one order) and by ``rank --dataset``'s successive halving over the top 8
(:func:`halving_order_scores`: its early rounds read the values of their smaller probe sets, the full draw's where a
benchmark recorded only that, as TransferGraph did). An estimator set is used with the members a benchmark records
(LogME alone on TransferGraph for LogME + NCE + H-score).

Nothing reported is chosen on its own targets. **Leave one benchmark out**: each benchmark is reported with the
option chosen on the other benchmarks; the shipped option is the one chosen without the zoo's targets
(:data:`HELD_OUT`), so the zoo benchmark (``benchmarks/zoo/run.py``) never saw it. Leave one target out (the option
chosen on every other target) is reported too. The stand-in priors never read the target either.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation.metrics import target_weight, weighted_tau
from ..finetune_records import FinetuneRecords, load_bundled_records
from ..hub.records import ModelRecord
from ..outputs.shortlist import EVIDENCE_KINDS
from ..rankers.baselines import CollaborativePrior
from ..tokens.task import Modality, TaskDescription, TaskTokens
from .budget import DEFAULT_K
from .fusion import FusionParameters, agreement_bound, estimator_view, final_order, fuse, normal_scores, posterior
from .halving import kept, per_class_of_rounds, rounds_for

VALIDATION_TABLE = "fusion_validation.csv"
SCENARIOS = ("seen", "mixed", "size", "other")
#: The benchmark the shipped option is chosen without: the end-to-end zoo, whose rows are reported with it.
HELD_OUT = "zoo"
#: Estimator sets the validation compares (each is one view; a benchmark uses the members it records).
ESTIMATOR_SETS: tuple[tuple[str, ...], ...] = (
    ("logme",),
    ("logme", "reg_hscore"),
    ("logme", "nce"),
    ("logme", "nce", "hscore"),
    ("logme", "nce", "reg_hscore"),  # H-score's shrinkage twin (Ibrahim et al. 2022)
)
#: The grid: credits of the estimator view, of stage one with records, with its family only, with size only; and
#: whether stage one's credit is scaled by its query-time agreement with the estimators (0 off, 1 on).
GRID: dict[str, tuple[float, ...]] = {
    "estimator": (0.3, 0.5, 0.7),
    "records": (0.1, 0.3, 0.5, 0.7),
    "content": (0.0, 0.2),
    "size": (0.0, 0.1),
    "agreement": (0.0, 1.0),
}
#: The re-ranking depths an option is scored at (``None``: every candidate), averaged: a fusion must serve the top 2
#: of a shortlist as well as a full list. Beside them, the option is scored on ``rank --dataset``'s path, successive
#: halving over the stage-one top :data:`~hf_spider.rerank.budget.DEFAULT_K` (:func:`halving_order_scores`).
FIT_KS: tuple[int | None, ...] = (2, 4, None)
#: Samples per class of the zoo's and zoo-meta's recorded values (the zoo's fine-tuning protocol trains on 8); their
#: successive-halving rounds run on the first 2 and 4 of them, recorded as ``<estimator>@<per class>`` columns.
HALVING_HELD = 8
UNSEEN_FOLDS = 4
#: An estimator view of the grid: (estimator set, the set's credit before each member's relative reliability).
ViewKey = tuple[tuple[str, ...], float]
#: Other tasks of a benchmark drawn (seeded) as the ``other`` scenario's stage ones for each target.
OTHER_TASKS = 4


@dataclass(frozen=True, eq=False)
class Scenario:
    """One ranking problem: a target's candidates, a stand-in stage one with its evidence, estimators and the truth.

    Args:
        group: the benchmark: ``"transfergraph/image"``, ``"transfergraph/text"``, ``"zoo-meta"`` or ``"zoo"``.
        target: the target task.
        kind: one of :data:`SCENARIOS`.
        stage_one: ``[K]`` stand-in stage-one scores.
        evidence: ``[K]`` what each rests on.
        estimators: name -> ``[K]`` recorded values.
        accuracy: ``[K]`` measured fine-tuned accuracy.
        rounds: samples per class -> name -> ``[K]`` values recorded on the first that many samples of each class
            (:func:`halving_column`); empty where only the full draw was recorded (TransferGraph).
    """

    group: str
    target: str
    kind: str
    stage_one: np.ndarray
    evidence: tuple[str, ...]
    estimators: dict[str, np.ndarray]
    accuracy: np.ndarray
    rounds: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class FusionFit:
    """The shipped choice and how it validates.

    Args:
        parameters: the reliabilities chosen without the :data:`HELD_OUT` benchmark (on every target when the table
            has no such benchmark): what :data:`~hf_spider.rerank.fusion.FUSION_PARAMETERS` holds.
        estimators: the estimator set chosen with them (:data:`~hf_spider.rerank.fusion.DEFAULT_ESTIMATORS`).
        lobo: ``group -> kind -> method -> mean weighted tau``, each benchmark scored with the option chosen on the
            other benchmarks (absent with a single benchmark); methods ``fusion``, ``stage_one`` (stand-in alone),
            ``estimator`` (chosen set alone) and ``logme`` (LogME alone).
        loto: the same, each target scored with the option chosen without that target.
        lobo_top_k, loto_top_k: ``group -> k -> method -> mean weighted tau`` of the ``seen`` scenario with only
            the stage-one top ``k`` re-ranked (the rest kept in stage-one order); ``estimator`` re-ranks the top
            ``k`` by the estimators alone.
        estimator_sets: ``group -> set name -> mean weighted tau`` of each set alone (all targets).
        estimator_alone: ``group -> estimator -> mean weighted tau`` of every estimator of the table alone.
        choices: the parameters chosen for each held-out target (to show how stable the choice is).
    """

    parameters: FusionParameters
    estimators: tuple[str, ...]
    lobo: dict[str, dict[str, dict[str, float]]]
    loto: dict[str, dict[str, dict[str, float]]]
    lobo_top_k: dict[str, dict[str, dict[str, float]]]
    loto_top_k: dict[str, dict[str, dict[str, float]]]
    estimator_sets: dict[str, dict[str, float]]
    estimator_alone: dict[str, dict[str, float]]
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_validation_table(path: str | Path | None = None) -> pd.DataFrame:
    """The bundled validation table (``hf_spider/data/fusion_validation.csv``), or the CSV at ``path``."""
    path = Path(path) if path is not None else Path(str(resources.files("hf_spider") / "data" / VALIDATION_TABLE))
    return pd.read_csv(path)


def build_scenarios(table: pd.DataFrame, *, seed: int = 0) -> list[Scenario]:
    """Every scenario of every target of ``table`` (see the module docstring)."""
    bundled = load_bundled_records()
    out = []
    for (source, modality), rows in table.groupby(["source", "modality"], sort=True):
        group = f"{source}/{modality}" if source == "transfergraph" else str(source)
        if source == "transfergraph":  # the prior reads every recorded target, not only those with estimator values
            records = bundled.for_modality(str(modality))
        else:
            no_scores = pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"])
            records = FinetuneRecords(rows[["model", "target", "modality", "accuracy"]], no_scores)
        models = sorted(rows.model.unique())
        rng = np.random.default_rng(seed)
        fold = dict(zip(models, rng.permutation(len(models)) % UNSEEN_FOLDS, strict=True))
        for target, on_target in rows.groupby("target", sort=True):
            on_target = on_target.sort_values("model")
            others = _other_tasks(str(target), on_target.model, records, rng)
            out += _target_scenarios(group, str(target), on_target, records, fold, others)
    return out


def _other_tasks(
    target: str, models: pd.Series, records: FinetuneRecords, rng: np.random.Generator
) -> list[tuple[np.ndarray, list[str]]]:
    """Up to :data:`OTHER_TASKS` other recorded tasks, drawn: each as the ``other`` scenario's ``[K]`` stage one (the
    candidates' accuracies there; a candidate without a record there gets their mean) and its evidence (``records``,
    or ``size`` for that mean, as the collaborative prior reports it)."""
    tasks = sorted(set(records.accuracy.target) - {target})
    out = []
    for task in [tasks[i] for i in rng.permutation(len(tasks))[:OTHER_TASKS]]:
        there = records.accuracy[records.accuracy.target == task].groupby("model").accuracy.mean()
        accuracy = models.map(there).to_numpy(np.float64)
        known = np.isfinite(accuracy)
        if not known.any():
            continue
        evidence = ["records" if k else "size" for k in known]
        out.append((np.where(known, accuracy, np.nanmean(accuracy)), evidence))
    return out


def _target_scenarios(
    group: str,
    target: str,
    rows: pd.DataFrame,
    records: FinetuneRecords,
    fold: Mapping[str, int],
    others: Sequence[tuple[np.ndarray, list[str]]],
) -> list[Scenario]:
    estimators = {name: rows[name].to_numpy(np.float64) for name in estimator_columns(rows) if rows[name].notna().any()}
    rounds: dict[int, dict[str, np.ndarray]] = {}
    for column in rows.columns[rows.columns.get_loc("accuracy") + 1 :]:
        name, _, per_class = column.partition("@")
        if per_class and rows[column].notna().any():
            rounds.setdefault(int(per_class), {})[name] = rows[column].to_numpy(np.float64)
    candidates = [
        ModelRecord(
            repo_id=m,
            model_type=None if pd.isna(t) else str(t),
            num_parameters=None if pd.isna(n) else int(n),
        )
        for m, t, n in zip(rows.model, rows.model_type, rows.num_parameters, strict=True)
    ]
    modality: Modality = "image" if rows.modality.iloc[0] == "image" else "text"
    task = TaskTokens(TaskDescription(name=target, modality=modality, label_names=("a", "b")))
    accuracy = rows.accuracy.to_numpy(np.float64)
    without = records.without_target(target)

    def scenario(kind: str, stage_one: np.ndarray, evidence: Sequence[str]) -> Scenario:
        return Scenario(group, target, kind, stage_one, tuple(evidence), estimators, accuracy, rounds)

    out = [scenario("seen", CollaborativePrior(without).score(task, candidates), ["records"] * len(candidates))]
    for f in range(UNSEEN_FOLDS):
        hidden = {c.repo_id for c in candidates if fold[c.repo_id] == f}
        if not hidden:
            continue
        seen = without.accuracy[~without.accuracy.model.isin(hidden)]
        families = {c.model_type for c in candidates if c.repo_id not in hidden and c.repo_id in set(seen.model)}
        evidence = [
            "records" if c.repo_id not in hidden else "content" if c.model_type in families else "size"
            for c in candidates
        ]
        prior = CollaborativePrior(FinetuneRecords(seen, without.estimator_scores)).score(task, candidates)
        out.append(scenario("mixed", prior, evidence))
    sizes = np.array([np.log(c.num_parameters) if c.num_parameters else 0.0 for c in candidates])
    out.append(scenario("size", sizes, ["size"] * len(candidates)))
    out += [scenario("other", stage_one, evidence) for stage_one, evidence in others]
    return out


def parameters_from_grid(
    point: Mapping[str, float], estimators: Sequence[str], relative: Mapping[str, float] | None = None
) -> FusionParameters:
    """The :class:`FusionParameters` of one grid point.

    ``lineage`` and ``facts`` have no stand-in in the records: they are credited as ``records`` (a measured result
    of the model itself or of its ancestor). Every estimator, chosen or not, is credited with ``point["estimator"]``
    times its ``relative`` reliability (:func:`relative_reliability`; 1 for one it does not name, LogME's), so within
    the estimator view each counts by how well it is known to rank; an estimator the table does not hold is credited
    with half of ``point["estimator"]``. ``point["agreement"]`` (default 0) switches the query-time agreement on.
    """
    credit = point["estimator"]
    relative = relative or {}
    return FusionParameters(
        evidence={
            "records": point["records"],
            "lineage": point["records"],
            "facts": point["records"],
            "content": point["content"],
            "size": point["size"],
        },
        estimators=estimator_credits([*relative, *estimators], credit, relative),
        unknown_estimator=round(credit / 2, 4),
        agreement=bool(point.get("agreement", 0.0)),
    )


def estimator_credits(estimators: Iterable[str], credit: float, relative: Mapping[str, float]) -> dict[str, float]:
    """``credit`` times each estimator's ``relative`` reliability (1 where it names none)."""
    return {e: round(credit * relative.get(e, 1.0), 4) for e in estimators}


def relative_reliability(
    estimator_alone: Mapping[str, Mapping[str, float]], reference: str = "logme"
) -> dict[str, float]:
    """Each estimator's weighted tau alone as a share of ``reference``'s, averaged over the groups that record both
    (clipped to [0, 1]): how to credit an estimator the fit did not choose when a caller replays its values."""
    ratios: dict[str, list[float]] = {}
    for taus in estimator_alone.values():
        if taus.get(reference, 0.0) <= 0:
            continue
        for name, tau in taus.items():
            ratios.setdefault(name, []).append(float(np.clip(tau / taus[reference], 0.0, 1.0)))
    return {name: round(float(np.mean(r)), 2) for name, r in sorted(ratios.items())}


def fused_order_scores(
    scenario: Scenario,
    estimators: Sequence[str],
    parameters: FusionParameters | None,
    k: int | None = None,
    *,
    alone: bool = False,
) -> np.ndarray:
    """Scores reproducing the final order: the stage-one top ``k`` fused (``alone``: ordered by the estimator view
    alone, stage one only breaking exact ties; ``parameters=None``: the estimators credited alike), the rest in
    stage-one order (``k=None``: every candidate is re-ranked)."""
    n = len(scenario.stage_one)
    by_stage_one = np.lexsort((np.arange(n), -scenario.stage_one))
    depth = n if k is None else k
    top, rest = by_stage_one[:depth], by_stage_one[depth:]
    values = {e: scenario.estimators[e] for e in available(scenario, estimators)}
    return _order_scores(np.concatenate([top[_fused_order(scenario, top, values, parameters, alone)], rest]))


def halving_order_scores(
    scenario: Scenario,
    estimators: Sequence[str],
    parameters: FusionParameters | None,
    *,
    alone: bool = False,
    k: int = DEFAULT_K,
) -> np.ndarray:
    """Scores reproducing ``rank --dataset``'s order: successive halving over the stage-one top ``k``, as
    :func:`~hf_spider.rerank.combine.rerank_shortlist` runs it (the one schedule of :mod:`hf_spider.rerank.halving`).
    Round ``r`` of ``R`` fuses the survivors' values on the first ``HALVING_HELD >> (R - 1 - r)`` samples of each
    class (the recorded ``rounds``; the full draw where a benchmark recorded only that) with stage one, and keeps the
    better half; the final list is the last round's order, then each dropped half, latest first, then the rest in
    stage-one order.
    ``alone`` and ``parameters=None`` as in :func:`fused_order_scores`."""

    def order(per_class: int, alive: np.ndarray) -> np.ndarray:
        values = scenario.rounds.get(per_class, scenario.estimators)
        return _fused_order(scenario, alive, {e: values[e] for e in available(scenario, estimators)}, parameters, alone)

    return _order_scores(_successive_halving(scenario.stage_one, k, order))


def _order_scores(final: np.ndarray) -> np.ndarray:
    """Scores (higher is better) that reproduce the list ``final`` (candidate indices, best first)."""
    scores = np.empty(len(final))
    scores[final] = -np.arange(len(final), dtype=np.float64)
    return scores


def _successive_halving(stage_one: np.ndarray, k: int, order: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """The final list (candidate indices, best first) of successive halving over the stage-one top ``k``: ``order``
    gives the order of the candidates ``alive`` on a round's ``per_class`` samples of each class."""
    n = len(stage_one)
    by_stage_one = np.lexsort((np.arange(n), -stage_one))
    alive, rest = by_stage_one[:k], by_stage_one[k:]
    total = rounds_for(len(alive))
    sections = []
    for r, per_class in enumerate(per_class_of_rounds(HALVING_HELD, total)):
        ranked = alive[order(per_class, alive)]
        keep = kept(len(ranked), last=r == total - 1)
        sections.append(ranked[keep:])
        alive = ranked[:keep]
    return np.concatenate([alive, *reversed(sections), rest])


def _fused_order(
    scenario: Scenario,
    top: np.ndarray,
    values: Mapping[str, np.ndarray],
    parameters: FusionParameters | None,
    alone: bool,
) -> np.ndarray:
    """The order :func:`~hf_spider.rerank.fusion.fuse` gives the candidates ``top`` with these estimator values."""
    values = {e: v[top] for e, v in values.items()}
    if parameters is None:
        parameters, alone = (
            FusionParameters(evidence={}, estimators=dict.fromkeys(values, 0.5), unknown_estimator=0.5),
            True,
        )
    stage_one = scenario.stage_one[top]
    if alone:
        return fuse(stage_one, values, confidence=[0.0] * len(top), parameters=parameters).order
    return fuse(stage_one, values, evidence=[scenario.evidence[i] for i in top], parameters=parameters).order


def halving_column(estimator: str, per_class: int) -> str:
    """The table column of ``estimator``'s value on the first ``per_class`` samples of each class."""
    return f"{estimator}@{per_class}"


def estimator_columns(table: pd.DataFrame) -> list[str]:
    """The table's estimator columns on the full draw (those of successive-halving rounds left out)."""
    return [c for c in table.columns[table.columns.get_loc("accuracy") + 1 :] if "@" not in c]


def available(scenario: Scenario, estimators: Sequence[str]) -> tuple[str, ...]:
    """The members of an estimator set that ``scenario``'s benchmark records (a set is used with those)."""
    return tuple(e for e in estimators if e in scenario.estimators)


def fit_fusion(
    table: pd.DataFrame | None = None,
    *,
    grid: Mapping[str, Sequence[float]] = GRID,
    estimator_sets: Sequence[Sequence[str]] = ESTIMATOR_SETS,
    top_ks: Sequence[int] = (2, 4),
    progress: Callable[[str], None] | None = None,
) -> FusionFit:
    """Choose the fusion's reliabilities and estimator set without the :data:`HELD_OUT` benchmark, and validate the
    choice leave one benchmark out and leave one target out (see the module docstring)."""
    table = load_validation_table() if table is None else table
    scenarios = build_scenarios(table)
    targets = sorted({(s.group, s.target) for s in scenarios})
    groups = sorted({t[0] for t in targets})
    weight = _target_weights(scenarios)
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    options = [(tuple(e), p) for e in estimator_sets for p in points]
    columns = estimator_columns(table)
    alone = _alone(scenarios, targets, weight, {e: (e,) for e in columns})
    # each estimator's credit relative to LogME's: measured without the zoo, as every shipped number is
    relative = relative_reliability({g: taus for g, taus in alone.items() if g != HELD_OUT})
    # tau[o, t]: target t's mean over its scenario kinds (mixed folds averaged first) under option o
    # what re-ranking does: only the stage-one top k is run, so an option is scored at every k of FIT_KS
    views = {(tuple(e), c): estimator_credits(e, c, relative) for e in estimator_sets for c in grid["estimator"]}
    prepared = [[_Prepared.of(s, views, k) for s in scenarios] for k in FIT_KS]
    halving = [_PreparedHalving.of(s, views) for s in scenarios]
    runs = {t: {kind: [i for i, s in enumerate(scenarios) if (s.group, s.target) == t and s.kind == kind]
                for kind in SCENARIOS} for t in targets}  # fmt: skip
    tau = np.zeros((len(options), len(targets)))
    for o, (estimators, point) in enumerate(options):
        params = parameters_from_grid(point, estimators, relative)
        view = (estimators, point["estimator"])
        at_depths = [[p.tau(params, view) for p in at_k] for at_k in prepared]
        at_depths.append([h.tau(params, view) for h in halving])
        taus = np.mean(at_depths, axis=0)
        tau[o] = [np.mean([taus[runs[t][kind]].mean() for kind in SCENARIOS if runs[t][kind]]) for t in targets]
        if progress is not None and o % 40 == 0:
            progress(f"option {o + 1}/{len(options)}")
    shipped = _best(tau, targets, weight, group=HELD_OUT)
    estimators, point = options[shipped]
    choices = {}
    per_target: dict[tuple[str, str], tuple[tuple[str, ...], FusionParameters]] = {}
    per_group: dict[str, tuple[tuple[str, ...], FusionParameters]] = {}
    for t in targets:
        chosen_estimators, chosen = options[_best(tau, targets, weight, target=t)]
        choices[f"{t[0]}:{t[1]}"] = {**chosen, "estimators": list(chosen_estimators)}
        per_target[t] = (chosen_estimators, parameters_from_grid(chosen, chosen_estimators, relative))
    for group in groups if len(groups) > 1 else ():
        chosen_estimators, chosen = options[_best(tau, targets, weight, group=group)]
        choices[group] = {**chosen, "estimators": list(chosen_estimators)}
        per_group[group] = (chosen_estimators, parameters_from_grid(chosen, chosen_estimators, relative))

    def of_kind(t: tuple[str, str], kind: str) -> list[Scenario]:
        return [scenarios[i] for i in runs[t][kind]]

    def report(choice: Callable[[tuple[str, str]], tuple[tuple[str, ...], FusionParameters]]) -> dict[str, Any]:
        by_kind, top = {}, {}
        for group in groups:
            in_group = [t for t in targets if t[0] == group]
            weights = [weight[t] for t in in_group]
            by_kind[group] = {
                kind: _weighted_methods([_method_taus(of_kind(t, kind), *choice(t)) for t in in_group], weights)
                for kind in SCENARIOS
            }
            top[group] = {
                k: _weighted_methods(
                    [_method_taus(of_kind(t, "seen"), *choice(t), k=k, with_logme=False) for t in in_group], weights
                )
                for k in [*map(str, top_ks), "halving"]
            }
        return {"kinds": by_kind, "top": top}

    loto = report(per_target.__getitem__)
    lobo = report(lambda t: per_group[t[0]]) if per_group else {"kinds": {}, "top": {}}
    return FusionFit(
        parameters=parameters_from_grid(point, estimators, relative),
        estimators=estimators,
        lobo=lobo["kinds"],
        loto=loto["kinds"],
        lobo_top_k=lobo["top"],
        loto_top_k=loto["top"],
        estimator_sets=_alone(scenarios, targets, weight, {"+".join(e): tuple(e) for e in estimator_sets}),
        estimator_alone=alone,
        choices=choices,
    )


def _target_weights(scenarios: Sequence[Scenario]) -> dict[tuple[str, str], float]:
    """TransferGraph targets weigh their accuracy spread (max - mean), as the paper's tables do; zoo targets 1."""
    out = {}
    for s in scenarios:
        out[s.group, s.target] = 1.0 if s.group.startswith("zoo") else target_weight(s.accuracy)
    return out


@dataclass(frozen=True, eq=False)
class _Prepared:
    """A scenario's views of its stage-one top ``k`` computed once, so scoring one grid point is a posterior mean and
    a sort (what :func:`fused_order_scores` does through :func:`~hf_spider.rerank.fusion.fuse`; a test checks they
    agree)."""

    scenario: Scenario
    top: np.ndarray  # [k] the stage-one top k, best first
    rest: np.ndarray  # the others, in stage-one order
    x_s: np.ndarray
    evidence: np.ndarray  # [k] index into EVIDENCE_KINDS
    views: dict[ViewKey, tuple[np.ndarray, float]]  # the view's [k] normal scores and its credit
    taus: dict[bytes, float] = field(default_factory=dict)  # weighted tau of each final order met

    @classmethod
    def of(cls, scenario: Scenario, views: Mapping[ViewKey, Mapping[str, float]], k: int | None = None) -> _Prepared:
        """``views``: (estimator set, grid credit) -> the credit of each member."""
        n = len(scenario.stage_one)
        by_stage_one = np.lexsort((np.arange(n), -scenario.stage_one))
        top, rest = by_stage_one[: n if k is None else k], by_stage_one[n if k is None else k :]
        out = {}
        for key, credits in views.items():
            values = {e: scenario.estimators[e][top] for e in available(scenario, key[0])}
            if values:
                out[key] = (estimator_view(values, credits)[0], max(credits[e] for e in values))
        evidence = np.array([EVIDENCE_KINDS.index(scenario.evidence[i]) for i in top])
        return cls(scenario, top, rest, normal_scores(scenario.stage_one[top]), evidence, out)

    def tau(self, params: FusionParameters, view: ViewKey) -> float:
        x_e, credit = self.views[view]
        order = _posterior_order(self.scenario.stage_one[self.top], self.x_s, x_e, credit, self.evidence, params)
        return _positions_tau(self.scenario, np.concatenate([self.top[order], self.rest]), self.taus)


@dataclass(frozen=True, eq=False)
class _PreparedHalving:
    """A scenario's successive halving (what :func:`halving_order_scores` does through
    :func:`~hf_spider.rerank.fusion.fuse`; a test checks they agree), each round's views computed once per set of
    survivors: grid points that keep the same candidates share them."""

    scenario: Scenario
    credits: Mapping[ViewKey, Mapping[str, float]]  # (estimator set, grid credit) -> the credit of each member
    evidence: np.ndarray  # [K] index into EVIDENCE_KINDS
    cache: dict[tuple[ViewKey, int, bytes], tuple[np.ndarray, np.ndarray, float]] = field(default_factory=dict)
    taus: dict[bytes, float] = field(default_factory=dict)  # weighted tau of each final order met

    @classmethod
    def of(cls, scenario: Scenario, credits: Mapping[ViewKey, Mapping[str, float]]) -> _PreparedHalving:
        return cls(scenario, credits, np.array([EVIDENCE_KINDS.index(e) for e in scenario.evidence]))

    def tau(self, params: FusionParameters, view: ViewKey, k: int = DEFAULT_K) -> float:
        stage_one = self.scenario.stage_one

        def order(per_class: int, alive: np.ndarray) -> np.ndarray:
            x_s, x_e, credit = self._views(view, per_class, alive)
            return _posterior_order(stage_one[alive], x_s, x_e, credit, self.evidence[alive], params)

        return _positions_tau(self.scenario, _successive_halving(stage_one, k, order), self.taus)

    def _views(self, view: ViewKey, per_class: int, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Stage one's and the estimator view's normal scores among ``alive`` and the view's credit."""
        key = (view, per_class, alive.tobytes())
        if key not in self.cache:
            values = self.scenario.rounds.get(per_class, self.scenario.estimators)
            members = {e: values[e][alive] for e in available(self.scenario, view[0])}
            credits = self.credits[view]
            x_e = estimator_view(members, credits)[0]
            self.cache[key] = (normal_scores(self.scenario.stage_one[alive]), x_e, max(credits[e] for e in members))
        return self.cache[key]


def _posterior_order(
    stage_one: np.ndarray,
    x_s: np.ndarray,
    x_e: np.ndarray,
    credit: float,
    evidence: np.ndarray,
    params: FusionParameters,
) -> np.ndarray:
    """The order :func:`~hf_spider.rerank.fusion.fuse` gives candidates whose stage one (``[k]`` scores, their normal
    scores ``x_s`` and the index of their evidence) and estimator view (``x_e``, ``credit``) are already computed."""
    rho_s = np.array([params.evidence[e] for e in EVIDENCE_KINDS])[evidence]
    rho_e = np.where(np.isnan(x_e), 0.0, credit)
    if params.agreement:
        rho_s = np.minimum(rho_s, agreement_bound(x_s, x_e, credit))
    scores, _ = posterior(x_s, rho_s, np.nan_to_num(x_e), rho_e)
    return final_order(scores, stage_one)


def _positions_tau(scenario: Scenario, final: np.ndarray, taus: dict[bytes, float]) -> float:
    """Weighted tau of the list ``final`` (candidate indices, best first) against the scenario's accuracy; ``taus``
    remembers each order's (most grid points lead a scenario to an order another point already led it to)."""
    key = final.tobytes()
    if key not in taus:
        taus[key] = weighted_tau(scenario.accuracy, _order_scores(final))
    return taus[key]


def _method_taus(
    runs: Sequence[Scenario],
    estimators: tuple[str, ...],
    params: FusionParameters,
    *,
    k: int | str | None = None,
    with_logme: bool = True,
) -> dict[str, float]:
    """Mean weighted tau over ``runs`` of the fusion, stage one alone, the estimators alone (and LogME alone); ``k``
    is the re-ranking depth, or ``"halving"`` for ``rank --dataset``'s successive halving."""

    def mean(order: Callable[[Scenario], np.ndarray]) -> float:
        return float(np.mean([weighted_tau(s.accuracy, order(s)) for s in runs]))

    def reranked(s: Scenario, names: Sequence[str], p: FusionParameters | None, alone: bool = False) -> np.ndarray:
        if k == "halving":
            return halving_order_scores(s, names, p, alone=alone)
        return fused_order_scores(s, names, p, None if k is None else int(k), alone=alone)

    out = {
        "fusion": mean(lambda s: reranked(s, estimators, params)),
        "stage_one": mean(lambda s: s.stage_one),
        "estimator": mean(lambda s: reranked(s, estimators, params, alone=True)),
    }
    if with_logme:
        out["logme"] = mean(lambda s: reranked(s, ("logme",), None))
    return out


def _weighted_methods(rows: Sequence[Mapping[str, float]], weights: Sequence[float]) -> dict[str, float]:
    return {m: _weighted_mean([row[m] for row in rows], weights) for m in rows[0]}


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    return float(np.average(values, weights=weights))


def _best(
    tau: np.ndarray,
    targets: Sequence[tuple[str, str]],
    weight: Mapping[tuple[str, str], float],
    *,
    target: tuple[str, str] | None = None,
    group: str | None = None,
) -> int:
    """The option with the best mean over benchmarks of the benchmark's weighted mean, ``target`` and every target
    of benchmark ``group`` left out."""
    means = []
    for name in sorted({t[0] for t in targets}):
        cols = [i for i, t in enumerate(targets) if t[0] == name != group and t != target]
        if cols:
            w = np.array([weight[targets[i]] for i in cols])
            means.append(tau[:, cols] @ w / w.sum())
    return int(np.argmax(np.mean(means, axis=0)))  # first best on ties: the grid's order decides, not chance


def _alone(
    scenarios: Sequence[Scenario],
    targets: Sequence[tuple[str, str]],
    weight: Mapping[tuple[str, str], float],
    sets: Mapping[str, tuple[str, ...]],
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for group in sorted({t[0] for t in targets}):
        in_group = [t for t in targets if t[0] == group]
        seen = {t: next(s for s in scenarios if (s.group, s.target) == t and s.kind == "seen") for t in in_group}
        out[group] = {}
        for name, members in sets.items():
            if not all(m in seen[in_group[0]].estimators for m in members):
                continue
            taus = [weighted_tau(seen[t].accuracy, fused_order_scores(seen[t], members, None)) for t in in_group]
            out[group][name] = _weighted_mean(taus, [weight[t] for t in in_group])
    return out
