"""Run the protocols of :mod:`hf_spider.evaluation.protocols` for any ranker, and ``hf-spider evaluate``.

Shared by ``benchmarks/transfergraph_bench.py``, ``hf-spider evaluate`` and ``selector.evaluate``, so the three give
the same figures; every figure is computed by :mod:`hf_spider.evaluation.metrics`. Per-target values are summarised
by a plain mean and a mean weighted by (max - mean) of the target's accuracies (:func:`~.metrics.target_weight`).

Cold start ranks a fold's models among themselves; the folds' ranks are pooled per target
(:func:`~.metrics.fold_rank`). Mixed pool scores each fold's complete list of the target's models and averages over
the folds of the target (folds with no held-out model on the target are left out). Besides the list metrics, the
placement of the held-out models is reported (:data:`PLACEMENT`): their share of the list and of the predicted top 5,
their mean predicted minus mean true percentile in the list, and the weighted tau restricted to them (NaN for a fold
with fewer than 2). Every model is held out in exactly one fold, so averaged over a target's folds the held-out models
fill the true top 5 in proportion to their share of the list: a top-5 share below the list share, or a negative
bias, means the ranker pushes unseen models down; a ranker blind to what was seen (the size prior, LogME) gets the
list share and a bias near 0 (exactly, when the folds hold equally many of the target's models).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from huggingface_hub.utils import tqdm

from ..errors import InvalidRecordsError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..hub.sanitize import some_of
from ..rankers import PRIORS, TRAINABLE_RANKERS, trainable_ranker
from ..rankers.base import Ranker, TrainableRanker
from ..tokens.task import TaskTokens
from .metrics import MEAN_ROWS, METRICS, fold_rank, metrics_table, ranking_metrics, summarise, target_weight
from .protocols import PROTOCOLS, Split, loto_splits, mixed_pool_splits, normalise_protocols
from .report import Evaluation

logger = logging.getLogger(__name__)

RankerFactory = Callable[[], TrainableRanker]
#: How the held-out models of a mixed-pool list are placed (see the module docstring).
PLACEMENT = (
    "heldout_share",
    "heldout_top5_share",
    "heldout_bias",
    "heldout_weighted_tau",
)


def evaluate(
    factory: RankerFactory,
    splits: Sequence[Split],
    tasks: Mapping[str, TaskTokens],
    *,
    models: Sequence[ModelRecord],
    name: str = "ranker",
    table: Callable[[Sequence[Split], Sequence[pd.Series]], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Fit a fresh ranker per split and score the split's test models on its target.

    Args:
        table: how the predictions become a table (default :func:`pooled_table`; :func:`mixed_pool_table` for
            mixed-pool splits).

    Returns:
        One row per target (cold-start folds pooled: their predictions are ranked per fold, then concatenated as
        within-fold ranks, see :func:`fold_rank`) with the :data:`METRICS` and the target weight.
    """
    predictions = []
    for split in tqdm(splits, desc=f"evaluate {name}", name="hf_spider.evaluate", leave=False):
        ranker = factory().fit(split.train_records, models, split.train_tasks)
        predictions.append(predict(ranker, tasks[split.target], split))
    return (table or pooled_table)(splits, predictions)


def evaluate_protocols(
    factory: RankerFactory,
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
    *,
    protocols: Sequence[str] = PROTOCOLS,
    folds: int = 4,
    seed: int = 0,
    name: str = "ranker",
) -> dict[str, pd.DataFrame]:
    """Every protocol of ``protocols`` for one ranker; cold start and mixed pool share their fits (same training data).

    Returns:
        ``{protocol: table}``: one row per target with the :data:`METRICS` and the weight (mixed pool also with the
        :data:`PLACEMENT` columns).
    """
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocol(s) {', '.join(sorted(unknown))}; pick from {', '.join(PROTOCOLS)}")
    tables = {}
    if "loto" in protocols:
        splits = loto_splits(records, models, tasks, targets)
        tables["loto"] = evaluate(factory, splits, tasks, models=models, name=name)
    if "cold_start" in protocols or "mixed_pool" in protocols:
        splits = mixed_pool_splits(records, models, tasks, targets, folds=folds, seed=seed)
        cold: list[tuple[Split, pd.Series]] = []
        mixed: list[tuple[Split, pd.Series]] = []
        for split in tqdm(splits, desc=f"evaluate {name} (folds)", name="hf_spider.evaluate", leave=False):
            part = split.held_out_part()
            ranks_part = "cold_start" in protocols and len(part.truth) >= 2
            if not ranks_part and "mixed_pool" not in protocols:
                continue
            ranker = factory().fit(split.train_records, models, split.train_tasks)
            if ranks_part:
                cold.append((part, predict(ranker, tasks[split.target], part)))
            if "mixed_pool" in protocols:
                mixed.append((split, predict(ranker, tasks[split.target], split)))
        if "cold_start" in protocols:
            tables["cold_start"] = pooled_table(*_unzip(cold))
        if "mixed_pool" in protocols:
            tables["mixed_pool"] = mixed_pool_table(*_unzip(mixed))
    return {p: tables[p] for p in PROTOCOLS if p in tables}


def predict(ranker: Ranker, task: TaskTokens, split: Split) -> pd.Series:
    """The ranker's scores of the split's test models as within-list ranks in [0, 1] (:func:`fold_rank`)."""
    scores = np.asarray(ranker.score(task, split.test_models), dtype=np.float64)
    return fold_rank(pd.Series(np.nan_to_num(scores, nan=-np.inf), index=split.truth.index))


def pooled_table(splits: Sequence[Split], predictions: Sequence[pd.Series]) -> pd.DataFrame:
    """Per-target metrics of predictions that rank disjoint parts of a target (one list per target for loto, one per
    fold for cold start).

    The correlations are those of the parts' within-part ranks pooled per target (:func:`pool_parts`, the benchmark's
    cold-start figure); top@k, rel@k and regret@k are each part's own (the top pick of a fold among its models),
    averaged over the target's parts, since pooled ranks tie every part's top pick.
    """
    table = metrics_table(split_truths(splits), pool_parts(splits, predictions))
    shortlist = [c for c in METRICS if c.startswith(("top", "rel", "regret"))]
    parts = pd.Series([s.target for s in splits]).value_counts()
    per_part: dict[str, list[dict[str, float]]] = {}
    for split, predicted in zip(splits, predictions, strict=True):
        if parts[split.target] > 1:
            row = ranking_metrics(split.truth.reindex(predicted.index).to_numpy(), predicted.to_numpy())
            per_part.setdefault(split.target, []).append({c: row[c] for c in shortlist})
    for target, rows in per_part.items():
        table.loc[target, shortlist] = pd.DataFrame(rows).mean().to_numpy()
    return table


def pool_parts(splits: Sequence[Split], predictions: Sequence[pd.Series]) -> dict[str, pd.Series]:
    """The predictions of each target's parts concatenated (within-part ranks, see :func:`fold_rank`)."""
    pooled: dict[str, list[pd.Series]] = {}
    for split, predicted in zip(splits, predictions, strict=True):
        pooled.setdefault(split.target, []).append(predicted)
    return {target: pd.concat(parts) for target, parts in pooled.items()}


def mixed_pool_table(splits: Sequence[Split], predictions: Sequence[pd.Series]) -> pd.DataFrame:
    """Per-target metrics of mixed-pool lists: each fold's list scored whole, with the held-out models' placement,
    then averaged over the target's folds (placement NaN where a fold has too few held-out models)."""
    rows: dict[str, list[dict[str, float]]] = {}
    for split, predicted in zip(splits, predictions, strict=True):
        truth = split.truth.reindex(predicted.index)
        row = ranking_metrics(truth.to_numpy(), predicted.to_numpy())
        rows.setdefault(split.target, []).append({**row, **heldout_placement(truth, predicted, split.held_out)})
    truths = split_truths(splits)
    table = {
        target: {**pd.DataFrame(per_fold).mean().to_dict(), "weight": target_weight(truths[target])}
        for target, per_fold in rows.items()
    }
    return pd.DataFrame.from_dict(table, orient="index", columns=[*METRICS, *PLACEMENT, "weight"])


def heldout_placement(truth: pd.Series, predicted: pd.Series, held_out: frozenset[str]) -> dict[str, float]:
    """Where one mixed list puts its held-out models (:data:`PLACEMENT`); both series indexed by model id."""
    held = predicted.index.isin(held_out)
    top = min(5, len(predicted))
    predicted_top = predicted.index[np.argsort(-predicted.to_numpy(), kind="stable")[:top]]
    true_rank = fold_rank(truth)
    tau = np.nan
    if held.sum() >= 2:
        tau = ranking_metrics(truth[held].to_numpy(), predicted[held].to_numpy())["weighted_tau"]
    return {
        "heldout_share": float(held.mean()),
        "heldout_top5_share": float(predicted_top.isin(held_out).mean()),
        "heldout_bias": float(predicted[held].mean() - true_rank[held].mean()),
        "heldout_weighted_tau": float(tau),
    }


def split_truths(splits: Sequence[Split]) -> dict[str, pd.Series]:
    """Ground truth per target over all of its splits (the cold-start folds of a target hold disjoint models).

    Keeping only one split's truth per target would leave the other folds' models NaN, which ``weightedtau`` does
    not reject: it silently returns a meaningless value (how the first cold-start figures were wrong).
    """
    parts: dict[str, list[pd.Series]] = {}
    for split in splits:
        parts.setdefault(split.target, []).append(split.truth)
    return {target: _first_per_model(pd.concat(truths)) for target, truths in parts.items()}


def _first_per_model(truth: pd.Series) -> pd.Series:
    """One value per model: mixed-pool folds repeat a target's whole truth."""
    return truth[~truth.index.duplicated()]


def _unzip(pairs: Sequence[tuple[Split, pd.Series]]) -> tuple[list[Split], list[pd.Series]]:
    return [s for s, _ in pairs], [p for _, p in pairs]


def evaluate_records(
    records: str | os.PathLike[str] | pd.DataFrame | FinetuneRecords,
    *,
    rankers: Sequence[str] = TRAINABLE_RANKERS,
    protocols: Sequence[str] = PROTOCOLS,
    candidates: str | os.PathLike[str] | Sequence[ModelRecord] | None = None,
    label_names: Mapping[str, Sequence[str]] | None = None,
    targets: Sequence[str] | None = None,
    keep_best_run: bool = False,
    allow_unknown_models: bool = False,
    folds: int = 4,
    seed: int = 0,
) -> Evaluation:
    """How well each ranker would have chosen on a team's own fine-tuning history (``hf-spider evaluate``).

    Each of ``rankers`` (plus the :data:`PRIORS`, always run as the yardstick) is fitted per protocol step on the
    team's records *and* the shipped TransferGraph records of the same modality, minus what the protocol hides, and
    ranks the team's models on each of the team's targets. A target the team's records name is theirs (the shipped
    rows of a target of the same name are dropped). On the shipped records this is exactly the benchmark.

    Args:
        records: what :func:`~hf_spider.finetune_records.read_user_records` reads (a CSV, a TransferGraph folder, a
            DataFrame, ``"example"``, ``"bundled"``).
        rankers: names from :data:`TRAINABLE_RANKERS`.
        protocols: from :data:`PROTOCOLS` (``cold-start`` and ``mixed-pool`` spellings accepted).
        candidates: records of models the bundled index lacks (an index file, a folder of Hub-style repos, or
            :class:`ModelRecord` objects); the bundled index is always included.
        label_names: class names per target (win over the labels column and the known dataset lists).
        targets: the targets to rank (default: every target of ``records``); the others still train the rankers.
        keep_best_run: keep the best of several runs of a (model, target) pair instead of refusing them.
        allow_unknown_models: rank models no candidate record describes from their repo id alone instead of
            refusing them.
        folds / seed: the cold-start folds, and the seed of the learned rankers.

    Returns:
        An :class:`~hf_spider.evaluation.report.Evaluation`: ``.table`` (one row per modality, protocol, ranker and
        target, plus ``weighted mean`` and ``plain mean`` rows), ``.notes``, ``.recommendations()``, ``.plot()``.

    Raises:
        InvalidRecordsError: bad records (see ``read_user_records``), a model no candidate describes, a target with
            fewer than 3 models, a target without label names or modality.
        UnknownRankerError: a ranker name that is not trainable.
    """
    from ..finetune_records import load_bundled_records, read_user_records, record_task_descriptions
    from ..tokens.build import task_tokens_from_labels

    protocols = normalise_protocols(protocols)
    names = list(dict.fromkeys([*rankers, *PRIORS]))
    for name in names:
        trainable_ranker(name)  # refuse an unknown name before any work
    user = read_user_records(records, label_names=label_names, keep_best_run=keep_best_run)
    notes = list(user.notes)
    pool = _candidate_pool(candidates)
    accuracy = _with_modality(user.records.accuracy, pool, user.source)
    unknown = sorted(set(accuracy.model) - set(pool))
    if unknown:
        if not allow_unknown_models:
            raise InvalidRecordsError(
                f"{user.source}: {len(unknown)} model id(s) are in no candidate record ({some_of(unknown)}); pass "
                "candidates= (--candidates) with a crawled index or their repo folders, or allow_unknown_models=True "
                "(--allow-unknown-models) to rank them from their repo id alone"
            )
        modality_of = accuracy.drop_duplicates("model").set_index("model").modality
        pool.update({m: ModelRecord(repo_id=m, pipeline_tag=_PIPELINE_TAG[modality_of[m]]) for m in unknown})
        notes.append(
            f"{len(unknown)} model(s) in no candidate record, ranked from their repo id alone: {some_of(unknown)}"
        )
    shipped = load_bundled_records()
    new = sorted(set(accuracy.model) - set(shipped.accuracy.model))
    if new:
        notes.append(
            f"{len(new)} of your {accuracy.model.nunique()} models have no shipped record: the learned rankers know "
            "them from your records and their content only"
        )
    evaluated = _evaluated_targets(accuracy, targets, user.source)
    undecided = _undecided_targets(accuracy, evaluated)
    if len(undecided) == len(evaluated):
        reasons = list(undecided.values())
        more = f" and {len(reasons) - 1} more target(s)" if len(reasons) > 1 else ""
        raise InvalidRecordsError(
            f"{user.source}: on every target most models share one accuracy ({reasons[0]}{more}), so no ranking can "
            "be scored; check that those fine-tuning runs trained"
        )
    for reason in undecided.values():
        notes.append(f"target {reason}: left out of the tables (it cannot tell models apart; did those runs train?)")
    evaluated = [t for t in evaluated if t not in undecided]
    modality_of_target = accuracy.groupby("target").modality.first()
    modalities = sorted({modality_of_target[t] for t in evaluated})
    merged = _merge(shipped, FinetuneRecords(accuracy, user.records.estimator_scores))
    merged = FinetuneRecords(  # only the evaluated modalities: their label names are all that gets encoded
        merged.accuracy[merged.accuracy.modality.isin(modalities)],
        merged.estimator_scores[merged.estimator_scores.modality.isin(modalities)],
    )
    descriptions = record_task_descriptions(merged, label_names=user.label_names)
    unlabelled = [t for t in evaluated if t not in descriptions]
    if unlabelled:
        raise InvalidRecordsError(
            f"{user.source}: no label names for target(s) {some_of(unlabelled)}; add a labels column (class names "
            "separated by '|') or pass label_names= (--labels-file JSON)"
        )
    tasks = {name: task_tokens_from_labels(d) for name, d in descriptions.items()}
    parts = []
    for modality in modalities:
        records_m = merged.for_modality(modality)
        recorded = set(records_m.accuracy.model)
        pool_m = [m for m in pool.values() if m.modality == modality or m.repo_id in recorded]
        targets_m = [t for t in evaluated if modality_of_target[t] == modality]
        for name in names:
            tables = evaluate_protocols(
                lambda name=name: trainable_ranker(name, seed=seed),  # type: ignore[misc]
                records_m,
                pool_m,
                tasks,
                targets_m,
                protocols=protocols,
                folds=folds,
                seed=seed,
                name=name,
            )
            counts = records_m.accuracy[records_m.accuracy.target.isin(targets_m)].groupby("target").size()
            for protocol, table in tables.items():
                parts.append(_long_rows(table, counts, modality=modality, protocol=protocol, ranker=name))
    return Evaluation(table=pd.concat(parts), notes=tuple(notes), source=user.source, protocols=tuple(protocols))


_PIPELINE_TAG = {"image": "image-classification", "text": "text-classification"}
#: Fewest models a target needs to say anything about a ranking of them.
MIN_MODELS_PER_TARGET = 3


def _long_rows(table: pd.DataFrame, counts: pd.Series, **keys: str) -> pd.DataFrame:
    """One protocol table as rows of the evaluation table: its targets, then the weighted and plain means."""
    columns = [*METRICS, *PLACEMENT]
    rows = table.reindex(columns=[*columns, "weight"]).assign(n_models=counts.reindex(table.index).to_numpy())
    means = {
        kind: {c: summarise(rows, c)[key] if rows[c].notna().any() else np.nan for c in columns}
        for kind, key in zip(MEAN_ROWS, ("weighted_mean", "plain_mean"), strict=True)
    }
    rows = pd.concat([rows, pd.DataFrame.from_dict(means, orient="index")])
    rows.index.name = "target"
    return rows.assign(**keys).set_index(list(keys), append=True).reorder_levels([*keys, "target"])


def _candidate_pool(candidates: str | os.PathLike[str] | Sequence[ModelRecord] | None) -> dict[str, ModelRecord]:
    """The bundled index plus the given candidates (the given record of a model wins), by repo id."""
    from ..ranking import load_candidates

    pool = {m.repo_id: m for m in load_candidates(None)}
    if candidates is not None and candidates != "bundled":
        pool.update({m.repo_id: m for m in load_candidates(candidates)})
    return pool


def _with_modality(accuracy: pd.DataFrame, pool: Mapping[str, ModelRecord], source: str) -> pd.DataFrame:
    """Fill a target's missing modality from what the candidate records say of its models (the most common)."""
    missing = accuracy.modality.isna()
    if not missing.any():
        return accuracy
    known = accuracy.model.map(lambda m: pool[m].modality if m in pool else None)
    inferred = known.groupby(accuracy.target).agg(lambda v: v.dropna().mode().iloc[0] if v.notna().any() else None)
    given = accuracy.modality.groupby(accuracy.target).first()
    modality = accuracy.target.map(given.fillna(inferred))
    if modality.isna().any():
        targets = sorted(set(accuracy.target[modality.isna()]))
        raise InvalidRecordsError(
            f"{source}: the modality of target(s) {some_of(targets)} is unknown (none of their models has an image or "
            "text record); add a modality column (image or text)"
        )
    return accuracy.assign(modality=modality)


def _evaluated_targets(accuracy: pd.DataFrame, targets: Sequence[str] | None, source: str) -> list[str]:
    counts = accuracy.groupby("target").model.nunique()
    chosen = list(targets) if targets else sorted(counts.index)
    unknown = [t for t in chosen if t not in counts.index]
    if unknown:
        raise InvalidRecordsError(
            f"target(s) {some_of(unknown)} are not in {source}; pick from {some_of(sorted(counts.index))}"
        )
    small = [t for t in chosen if counts[t] < MIN_MODELS_PER_TARGET]
    if small:
        raise InvalidRecordsError(
            f"{source}: target '{small[0]}' has {counts[small[0]]} model(s) (a ranking needs at least "
            f"{MIN_MODELS_PER_TARGET}){f' and {len(small) - 1} more target(s) too' if len(small) > 1 else ''}; add "
            "runs of more models, or leave it out with targets= (--targets)"
        )
    return chosen


def _undecided_targets(accuracy: pd.DataFrame, targets: Sequence[str]) -> dict[str, str]:
    """Targets on which more than half of the models share one accuracy, with the reason as the notes say it.

    Such a list holds failed runs (every model at chance, say), not a ranking: its ties make weighted tau noise, and
    its (max - mean) weight can outweigh every real target together (TransferGraph's food101: 110 of its 112 models
    at 0.01).
    """
    undecided = {}
    for target in targets:
        best = accuracy[accuracy.target == target].groupby("model").accuracy.max().round(6)
        shared = best.value_counts()
        if shared.iloc[0] * 2 > len(best):
            undecided[target] = (
                f"'{target}': {shared.iloc[0]} of its {len(best)} models share accuracy {shared.index[0]:g}"
            )
    return undecided


def _merge(shipped: FinetuneRecords, user: FinetuneRecords) -> FinetuneRecords:
    """The shipped records plus the user's. A target the user's records name is theirs: its shipped rows are dropped,
    so one list never mixes accuracies measured under two set-ups."""
    theirs = set(user.accuracy.target)
    return FinetuneRecords(
        pd.concat([shipped.accuracy[~shipped.accuracy.target.isin(theirs)], user.accuracy], ignore_index=True),
        pd.concat(
            [shipped.estimator_scores[~shipped.estimator_scores.target.isin(theirs)], user.estimator_scores],
            ignore_index=True,
        ),
    )
