"""TransferGraph benchmark: leave-one-target-out, cold-start and mixed-pool ranking quality of hf-spider and baselines.

Protocols: ``shared/data/transfergraph/README.md`` and :mod:`hf_spider.evaluation` (which defines the mixed pool:
each cold-start fold's held-out models ranked together with the seen models of the target, in one list). Every learned
ranker is trained per held-out target on the records of the target's modality, other targets only; every figure is
computed by the shipped ``evaluate`` module ``model_ranking``. The forward-pass estimators (the records' LogME and
Reg-H-Score) are reported on the models they scored, the paper's way, with hf-spider ranking the same models beside
them (``scored_subset``); every other row ranks every recorded model. Prints one table per modality and protocol;
``--json OUT.json`` writes the contract of issue 5 (plus ``mixed_pool`` next to ``cold_start``), hardware, versions
and seeds.

    python benchmarks/transfergraph_bench.py --json benchmarks/results/transfergraph.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_spider.evaluation.evaluate import (
    PLACEMENT,
    RankerFactory,
    evaluate,
    evaluate_protocols,
    mixed_pool_table,
    pool_parts,
    pooled_table,
    split_truths,
)
from hf_spider.evaluation.metrics import fold_rank, metrics_table, summarise
from hf_spider.evaluation.protocols import Split, cold_start_splits, loto_splits, mixed_pool_splits
from hf_spider.finetune_records import (
    PUBLISHED_TARGETS,
    FinetuneRecords,
    load_transfergraph,
    published_transfergraph_best,
    record_tasks,
)
from hf_spider.hub.index import load_bundled_index
from hf_spider.hub.output_paths import atomic_write
from hf_spider.hub.records import ModelRecord
from hf_spider.rankers import TrainableRanker, trainable_ranker
from hf_spider.rankers.graph import percentile_matrix
from hf_spider.scorer.ranker import SpiderRanker
from hf_spider.scorer.train import TrainConfig
from hf_spider.tokens.task import TaskTokens

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "transfergraph"
RANDOM_SEEDS = 100
#: Cold-start folds: a quarter of the models held out at a time.
FOLDS = 4
ESTIMATORS = {"logme": "logme", "reg_hscore": "reg_h_score"}


@dataclass
class WithExtraRecords:
    """A ranker trained on each split's records *plus* records of other models on other tasks (the zoo's sampled
    tasks of ``hf-spider build-records``): whether adding such records costs the benchmark anything."""

    inner: SpiderRanker
    extra: FinetuneRecords
    extra_tasks: dict[str, TaskTokens]
    extra_models: list[ModelRecord]
    name: str = "hf_spider_plus_zoo_records"

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> WithExtraRecords:
        joined = FinetuneRecords(
            pd.concat([records.accuracy, self.extra.accuracy], ignore_index=True),
            pd.concat([records.estimator_scores, self.extra.estimator_scores], ignore_index=True),
        )
        self.inner.fit(joined, [*models, *self.extra_models], {**tasks, **self.extra_tasks})
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return self.inner.score(task, candidates)


def learned_rankers(seed: int, members: int, extra: Path | None = None) -> dict[str, RankerFactory]:
    """The rows of the run: a factory of a fresh, unfitted ranker per name (the name is the key in the JSON).

    A new variant is one more entry; ``--skip NAME`` leaves an entry out. ``extra`` (a zoo cache ``v1`` folder with
    ``meta_records`` and ``repos``) adds the row ``hf_spider_plus_zoo_records``.
    """
    config = TrainConfig(seed=seed, members=members)
    factories: dict[str, RankerFactory] = {
        "hf_spider": lambda: SpiderRanker(config=config),
        # Ablations of the scorer: without the transfer space in its learned tokens, with the read-out learned freely
        # (no pull back to its prior), and with the content path trained.
        "hf_spider_no_transfer_space": lambda: SpiderRanker(config=replace(config, transfer_space=False)),
        "hf_spider_free_readout": lambda: SpiderRanker(config=replace(config, prior_strength=0.0)),
        "hf_spider_content_path": lambda: SpiderRanker(config=replace(config, content_path=True)),
        "transfergraph_graph": lambda: trainable_ranker("graph", seed=seed),
        "fennec": lambda: trainable_ranker("fennec", seed=seed),
        "collab_prior": lambda: trainable_ranker("collab_prior"),
        "size_prior": lambda: trainable_ranker("size_prior"),
        # Seen models by the collaborative prior, unseen ones by size, both as percentiles (issue 15's baseline).
        "collab_prior_size_fallback": lambda: trainable_ranker("collab_prior_size_fallback"),
    }
    if extra is not None:
        from hf_spider.hub.local import records_from_dir
        from hf_spider.metarecords import load_meta_records

        meta = load_meta_records(extra / "meta_records")
        zoo_models = records_from_dir(extra / "repos")
        factories["hf_spider_plus_zoo_records"] = lambda: WithExtraRecords(
            SpiderRanker(config=config), meta.records, dict(meta.tasks), zoo_models
        )
    return factories


@dataclass
class FitOnce:
    """A ranker factory that fits once per training set and hands the fitted ranker back for the same training set
    again: a target's whole list and the subsets a forward-pass estimator scored are then ranked by one fit (the fit
    is what costs; scoring a subset is a second ``score`` call, not a second training)."""

    factory: RankerFactory
    fits: dict[tuple, TrainableRanker] = field(default_factory=dict)

    def __call__(self) -> TrainableRanker:
        return _Reused(self)


@dataclass
class _Reused:
    owner: FitOnce
    fitted: TrainableRanker | None = None
    name: str = "reused"

    def fit(self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]) -> _Reused:
        key = (
            tuple(sorted(tasks)),
            len(records.accuracy),
            int(pd.util.hash_pandas_object(records.accuracy, index=False).sum()),
            len(models),
        )
        if key not in self.owner.fits:
            self.owner.fits[key] = self.owner.factory().fit(records, models, tasks)
        self.fitted = self.owner.fits[key]
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        assert self.fitted is not None, "call fit() first"
        return self.fitted.score(task, candidates)


def estimator_scores(records: FinetuneRecords, estimator: str, target: str) -> pd.Series:
    """The recorded values of one forward-pass estimator on ``target``, by model (models it did not score absent)."""
    scores = records.estimator_scores
    rows = scores[(scores.target == target) & (scores.estimator == estimator) & scores.score.notna()]
    return rows.groupby("model").score.mean()


def scored_subset_tables(
    records: FinetuneRecords,
    splits: list[Split],
    tasks: Mapping[str, TaskTokens],
    pool: Sequence[ModelRecord],
    spider: FitOnce,
    *,
    mixed: bool = False,
) -> dict[str, dict[str, pd.DataFrame]]:
    """LogME and Reg-H-Score (recorded forward passes on the target itself) on the models each of them scored, the
    paper's way, with hf-spider ranking exactly those models beside them (same fits as its full-list rows).

    Returns:
        ``{estimator: {estimator: table, "hf_spider": table}}``; a split left with fewer than 2 scored models is
        dropped for both.
    """
    table = mixed_pool_table if mixed else pooled_table
    out = {}
    for method, estimator in ESTIMATORS.items():
        parts, predictions = [], []
        for split in splits:
            values = estimator_scores(records, estimator, split.target)
            part = split.restricted(values.index)
            if len(part.truth) < 2:
                continue
            parts.append(part)
            predictions.append(fold_rank(values.reindex(part.truth.index)))
        spider_table = evaluate(spider, parts, tasks, models=pool, name=f"hf_spider on {method}'s models", table=table)
        out[method] = {method: table(parts, predictions), "hf_spider": spider_table}
    return out


def scored_share(records: FinetuneRecords, splits: list[Split]) -> dict[str, float]:
    """Share of the ranked (target, model) pairs each estimator scored."""
    total = sum(len(s.truth) for s in splits)
    return {
        method: sum(len(s.restricted(estimator_scores(records, estimator, s.target).index).truth) for s in splits)
        / total
        for method, estimator in ESTIMATORS.items()
    }


def random_table(splits: list[Split]) -> pd.DataFrame:
    """The random baseline: mean of seeds (its expectation is 0 whatever the list)."""
    randoms = []  # only their pooled correlations are reported
    truths = split_truths(splits)
    for seed in range(RANDOM_SEEDS):
        rng = np.random.default_rng(seed)
        predictions = [pd.Series(rng.random(len(s.truth)), index=s.truth.index) for s in splits]
        randoms.append(metrics_table(truths, pool_parts(splits, predictions)))
    return sum(randoms[1:], randoms[0]) / RANDOM_SEEDS


def own_records_reference(records: FinetuneRecords, splits: list[Split]) -> pd.DataFrame:
    """Cold start: each held-out model ranked by its own mean percentile on the other targets, read from the records
    the protocol hides. Not a ranker (no method can see those records): the ceiling of any content-only estimate of a
    model's overall quality, against which the content-only rows and LogME can be read."""
    percentiles = percentile_matrix(records)
    predictions = [fold_rank(percentiles.drop(columns=[s.target]).reindex(s.truth.index).mean(axis=1)) for s in splits]
    return pooled_table(splits, predictions)


def run_modality(
    records: FinetuneRecords,
    models: list,
    tasks: dict,
    modality: str,
    *,
    data: Path | None,
    seed: int,
    members: int,
    cold: bool,
    skip: Sequence[str] = (),
    targets: Sequence[str] | None = None,
    factories: dict[str, RankerFactory] | None = None,
    extra: Path | None = None,
) -> dict:
    """Every ranker of the run on one modality; ``data`` (the records folder) adds the published row when given."""
    records = records.for_modality(modality)
    targets = list(targets or PUBLISHED_TARGETS[modality])
    pool = [m for m in models if m.modality == modality]
    factories = {k: v for k, v in (factories or learned_rankers(seed, members, extra)).items() if k not in skip}
    spider = FitOnce(factories["hf_spider"]) if "hf_spider" in factories else None
    if spider is not None:
        factories["hf_spider"] = spider
    # Cold start and mixed pool share their fits (their time is booked to cold start).
    runs = [("loto",), ("cold_start", "mixed_pool")] if cold else [("loto",)]
    out: dict = {"weighted_mean": {}, "plain_mean": {}, "per_target": {}, "rel_at_1": {}, "top_at_1": {}, "pearson": {}}
    by_protocol: dict[str, dict[str, pd.DataFrame]] = {p: {} for run in runs for p in run}
    seconds = {run[0]: 0.0 for run in runs}
    for run in runs:
        for name, factory in factories.items():
            started = time.perf_counter()
            tables = evaluate_protocols(
                factory, records, pool, tasks, targets, protocols=run, folds=FOLDS, seed=seed, name=name
            )
            seconds[run[0]] += time.perf_counter() - started
            for protocol, table in tables.items():
                by_protocol[protocol][name] = table
    splits = loto_splits(records, pool, tasks, targets)
    by_protocol["loto"]["random"] = random_table(splits)
    subsets = {"loto": scored_subset_tables(records, splits, tasks, pool, spider)} if spider else {}
    out["seconds_loto"] = seconds["loto"]
    for name, table in by_protocol["loto"].items():
        means = summarise(table)
        out["weighted_mean"][name] = means["weighted_mean"]
        out["plain_mean"][name] = means["plain_mean"]
        out["rel_at_1"][name] = float(table.rel1.mean())
        out["top_at_1"][name] = float(table.top1.mean())
        out["pearson"][name] = float(table.pearson.mean())
        for target, value in table.weighted_tau.items():
            out["per_target"].setdefault(target, {})[name] = float(value)
    if data is not None:
        published = published_transfergraph_best(data, modality)
        out["weighted_mean"]["transfergraph_published"] = published["weighted_mean"]
        out["plain_mean"]["transfergraph_published"] = published["plain_mean"]
        for target, value in published["per_target"].items():
            out["per_target"].setdefault(target, {})["transfergraph_published"] = value
    if cold:
        cold_splits = cold_start_splits(records, pool, tasks, targets, folds=FOLDS, seed=seed)
        cold_tables = by_protocol["cold_start"]
        cold_tables["random"] = random_table(cold_splits)
        cold_tables["own_records_reference"] = own_records_reference(records, cold_splits)
        if spider is not None:
            subsets["cold_start"] = scored_subset_tables(records, cold_splits, tasks, pool, spider)
        out["cold_start"] = {name: summarise(t)["weighted_mean"] for name, t in cold_tables.items()}
        out["cold_start_plain"] = {name: summarise(t)["plain_mean"] for name, t in cold_tables.items()}
        out["seconds_cold_start"] = seconds["cold_start"]
        mixed_splits = mixed_pool_splits(records, pool, tasks, targets, folds=FOLDS, seed=seed)
        mixed_tables = by_protocol["mixed_pool"]
        if spider is not None:
            subsets["mixed_pool"] = scored_subset_tables(records, mixed_splits, tasks, pool, spider, mixed=True)
        out["mixed_pool"] = {name: summarise(t)["weighted_mean"] for name, t in mixed_tables.items()}
        out["mixed_pool_plain"] = {name: summarise(t)["plain_mean"] for name, t in mixed_tables.items()}
        out["mixed_pool_detail"] = {
            name: {metric: summarise(t, metric)["weighted_mean"] for metric in ("rel1", "rel5", *PLACEMENT)}
            for name, t in mixed_tables.items()
        }
        out["mixed_pool_per_target"] = {
            target: {name: float(t.weighted_tau[target]) for name, t in mixed_tables.items()} for target in targets
        }
    if subsets:
        out["scored_subset"] = scored_subset_summary(records, splits, subsets)
    return out


def scored_subset_summary(
    records: FinetuneRecords, splits: list[Split], subsets: Mapping[str, dict[str, dict[str, pd.DataFrame]]]
) -> dict:
    """``{estimator: {"share": ..., protocol: {"weighted_mean" / "plain_mean": {name: value}}, "per_target": ...}}``:
    each forward-pass estimator and hf-spider on the models the estimator scored."""
    share = scored_share(records, splits)
    out: dict = {}
    for method in ESTIMATORS:
        out[method] = {"share_of_models_scored": share[method]}
        for protocol, tables in subsets.items():
            pair = tables[method]
            out[method][protocol] = {
                kind: {name: summarise(t)[kind] for name, t in pair.items()} for kind in ("weighted_mean", "plain_mean")
            }
        loto = subsets["loto"][method]
        out[method]["per_target"] = {
            target: {name: float(t.weighted_tau[target]) for name, t in loto.items()} for target in loto[method].index
        }
    return out


def print_tables(results: dict) -> None:
    for modality, res in results.items():
        if modality == "meta":
            continue
        frame = pd.DataFrame(res["per_target"]).T
        frame.loc["plain mean"] = pd.Series(res["plain_mean"])
        frame.loc["weighted mean"] = pd.Series(res["weighted_mean"])
        frame.loc["rel@1"] = pd.Series(res["rel_at_1"])
        print(f"\n## {modality}: weighted tau, leave one target out\n")
        print(frame.round(3).to_string())
        if "cold_start" in res:
            print(f"\n## {modality}: cold start (25 % of the models unseen, 4 folds), weighted / plain mean\n")
            print(pd.DataFrame({"weighted": res["cold_start"], "plain": res["cold_start_plain"]}).round(3).to_string())
        if "mixed_pool" in res:
            print(
                f"\n## {modality}: mixed pool (each fold's unseen models ranked with the seen ones in one list), "
                "weighted means; held-out models: share of the list / of the predicted top 5, bias (mean predicted "
                "minus true percentile), weighted tau among them\n"
            )
            frame = pd.DataFrame(res["mixed_pool_detail"]).T
            frame.insert(0, "plain", pd.Series(res["mixed_pool_plain"]))
            frame.insert(0, "weighted", pd.Series(res["mixed_pool"]))
            print(frame.round(3).to_string())
        for method, subset in res.get("scored_subset", {}).items():
            print(
                f"\n## {modality}: {method} and hf-spider on the models {method} scored "
                f"({subset['share_of_models_scored']:.0%} of them), weighted / plain mean\n"
            )
            rows = {
                f"{protocol} {kind.split('_')[0]}": subset[protocol][kind]
                for protocol in ("loto", "cold_start", "mixed_pool")
                if protocol in subset
                for kind in ("weighted_mean", "plain_mean")
            }
            print(pd.DataFrame(rows).round(3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the transfergraph records folder")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--modalities", nargs="+", default=["image", "text"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=TrainConfig().members)
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="learned rankers to leave out (quick iterations), e.g. fennec"
    )
    parser.add_argument(
        "--drop-targets",
        nargs="*",
        default=[],
        help="training targets to leave out of the records entirely, e.g. food101 (its runs sit at chance)",
    )
    parser.add_argument(
        "--zoo-records",
        type=Path,
        help="a zoo cache version folder (~/.cache/hf_spider/zoo/v1, with meta_records/ and repos/): adds the row "
        "hf_spider_plus_zoo_records, the scorer trained on each split's records plus the zoo's sampled tasks",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other modalities' results already in --json (run one modality per process, then merge)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    started = time.perf_counter()
    records = load_transfergraph(args.data, tuple(args.modalities))
    if args.drop_targets:
        records = FinetuneRecords(
            records.accuracy[~records.accuracy.target.isin(args.drop_targets)],
            records.estimator_scores[~records.estimator_scores.target.isin(args.drop_targets)],
        )
    models = load_bundled_index()
    tasks = record_tasks(records)
    results: dict = {}
    for modality in args.modalities:
        results[modality] = run_modality(
            records,
            models,
            tasks,
            modality,
            data=Path(args.data),
            seed=args.seed,
            members=args.members,
            cold=not args.no_cold_start,
            skip=args.skip,
            extra=args.zoo_records,
        )
    results["meta"] = {
        "seconds": time.perf_counter() - started,
        "seed": args.seed,
        "members": args.members,
        "random_seeds": RANDOM_SEEDS,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    print_tables(results)
    print(f"\ntotal {results['meta']['seconds']:.0f} s")
    if args.json:
        if args.merge and args.json.is_file():
            kept = json.loads(args.json.read_text(encoding="utf-8"))
            results["meta"] = {**kept.pop("meta", {}), f"{'+'.join(args.modalities)}": results["meta"]}
            results = {**kept, **results}
        with atomic_write(args.json) as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
