"""TransferGraph benchmark: leave-one-target-out and cold-start ranking quality of hf-spider against the baselines.

Protocol: ``shared/data/transfergraph/README.md`` (see :mod:`hf_spider.scorer.evaluate`). Every learned ranker is
trained per held-out target on the records of the target's modality, other targets only. Prints one table per
modality and protocol; ``--json OUT.json`` writes the contract of issue 5 plus hardware, versions and seeds.

    python benchmarks/transfergraph_bench.py --json benchmarks/results/transfergraph.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_spider.finetune_records import (
    PUBLISHED_TARGETS,
    FinetuneRecords,
    load_transfergraph,
    published_transfergraph_best,
)
from hf_spider.hub.index import atomic_write, load_bundled_index
from hf_spider.rankers.baselines import CollaborativePrior, SizePrior
from hf_spider.rankers.graph import percentile_matrix
from hf_spider.scorer.evaluate import (
    FittedBaseline,
    Split,
    cold_start_splits,
    evaluate,
    fold_rank,
    loto_splits,
    metrics_table,
    split_truths,
    summarise,
)
from hf_spider.scorer.ranker import SpiderRanker, record_tasks
from hf_spider.scorer.train import TrainConfig

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "transfergraph"
RANDOM_SEEDS = 100
ESTIMATORS = {"logme": "logme", "reg_hscore": "reg_h_score"}
#: The colleague rankers, reported when their modules exist: (name in the JSON, module, class).
OPTIONAL_RANKERS = (
    ("transfergraph_graph", "hf_spider.rankers.graph", "GraphRanker"),
    ("fennec", "hf_spider.rankers.fennec", "FennecRanker"),
)


def learned_rankers(seed: int, members: int) -> dict[str, Callable[[], object]]:
    """Factories of every trainable method of the run (hf-spider, priors, and the optional colleague rankers)."""
    config = TrainConfig(seed=seed, members=members)
    factories: dict[str, Callable[[], object]] = {
        "hf_spider": lambda: SpiderRanker(config=config),
        # Ablations of the scorer: without the transfer space in its learned tokens, with the read-out learned freely
        # (no pull back to its prior), and with the content path trained.
        "hf_spider_no_transfer_space": lambda: SpiderRanker(config=replace(config, transfer_space=False)),
        "hf_spider_free_readout": lambda: SpiderRanker(config=replace(config, prior_strength=0.0)),
        "hf_spider_content_path": lambda: SpiderRanker(config=replace(config, content_path=True)),
        "collab_prior": lambda: FittedBaseline(CollaborativePrior, name="collab_prior"),
        "size_prior": lambda: FittedBaseline(lambda _records: SizePrior(), name="size_prior"),
    }
    for name, module, cls in OPTIONAL_RANKERS:
        try:
            ranker_cls = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):
            logging.info("%s not importable: skipped", module)
            continue
        factories[name] = lambda ranker_cls=ranker_cls: ranker_cls(seed=seed)
    return factories


def forward_pass_tables(records: FinetuneRecords, splits: list[Split]) -> dict[str, pd.DataFrame]:
    """LogME, Reg-H-Score (recorded forward passes on the target itself) and the random baseline (mean of seeds)."""
    truths = split_truths(splits)
    tables = {}
    scores = records.estimator_scores
    for method, estimator in ESTIMATORS.items():
        predictions = {}
        for s in splits:
            rows = scores[(scores.target == s.target) & (scores.estimator == estimator)]
            predicted = rows.groupby("model").score.mean().reindex(s.truth.index)
            predictions.setdefault(s.target, []).append(fold_rank(predicted))
        tables[method] = metrics_table(truths, {t: pd.concat(p) for t, p in predictions.items()})
    randoms = []
    for seed in range(RANDOM_SEEDS):
        rng = np.random.default_rng(seed)
        predictions = {}
        for s in splits:
            predictions.setdefault(s.target, []).append(pd.Series(rng.random(len(s.truth)), index=s.truth.index))
        randoms.append(metrics_table(truths, {t: pd.concat(p) for t, p in predictions.items()}))
    tables["random"] = sum(randoms[1:], randoms[0]) / RANDOM_SEEDS
    return tables


def own_records_reference(records: FinetuneRecords, splits: list[Split]) -> pd.DataFrame:
    """Cold start: each held-out model ranked by its own mean percentile on the other targets, read from the records
    the protocol hides. Not a ranker (no method can see those records): the ceiling of any content-only estimate of a
    model's overall quality, against which the content-only rows and LogME can be read."""
    percentiles = percentile_matrix(records)
    predictions = {}
    for s in splits:
        others = percentiles.drop(columns=[s.target]).reindex(s.truth.index)
        predictions.setdefault(s.target, []).append(fold_rank(others.mean(axis=1)))
    return metrics_table(split_truths(splits), {t: pd.concat(p) for t, p in predictions.items()})


def run_modality(
    records: FinetuneRecords,
    models: list,
    tasks: dict,
    modality: str,
    *,
    data: Path,
    seed: int,
    members: int,
    cold: bool,
    skip: Sequence[str] = (),
) -> dict:
    records = records.for_modality(modality)
    targets = list(PUBLISHED_TARGETS[modality])
    pool = [m for m in models if m.modality == modality]
    factories = {k: v for k, v in learned_rankers(seed, members).items() if k not in skip}
    out: dict = {"weighted_mean": {}, "plain_mean": {}, "per_target": {}, "rel_at_1": {}, "top_at_1": {}, "pearson": {}}
    tables: dict[str, pd.DataFrame] = {}
    splits = loto_splits(records, pool, tasks, targets)
    started = time.perf_counter()
    for name, factory in factories.items():
        tables[name] = evaluate(factory, splits, tasks, models=pool, name=name)  # type: ignore[arg-type]
    tables.update(forward_pass_tables(records, splits))
    out["seconds_loto"] = time.perf_counter() - started
    for name, table in tables.items():
        means = summarise(table)
        out["weighted_mean"][name] = means["weighted_mean"]
        out["plain_mean"][name] = means["plain_mean"]
        out["rel_at_1"][name] = float(table.rel1.mean())
        out["top_at_1"][name] = float(table.top1.mean())
        out["pearson"][name] = float(table.pearson.mean())
        for target, value in table.weighted_tau.items():
            out["per_target"].setdefault(target, {})[name] = float(value)
    published = published_transfergraph_best(data, modality)
    out["weighted_mean"]["transfergraph_published"] = published["weighted_mean"]
    out["plain_mean"]["transfergraph_published"] = published["plain_mean"]
    for target, value in published["per_target"].items():
        out["per_target"].setdefault(target, {})["transfergraph_published"] = value
    if cold:
        started = time.perf_counter()
        cold_splits = cold_start_splits(records, pool, tasks, targets, folds=4, seed=seed)
        cold_tables = {
            name: evaluate(factories[name], cold_splits, tasks, models=pool, name=f"{name} cold")  # type: ignore[arg-type]
            for name in factories
        }
        forward_pass = forward_pass_tables(records, cold_splits)
        cold_tables.update({name: forward_pass[name] for name in ("logme", "reg_hscore", "random")})
        cold_tables["own_records_reference"] = own_records_reference(records, cold_splits)
        out["cold_start"] = {name: summarise(t)["weighted_mean"] for name, t in cold_tables.items()}
        out["cold_start_plain"] = {name: summarise(t)["plain_mean"] for name, t in cold_tables.items()}
        out["seconds_cold_start"] = time.perf_counter() - started
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    started = time.perf_counter()
    records = load_transfergraph(args.data, tuple(args.modalities))
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
        with atomic_write(args.json) as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
