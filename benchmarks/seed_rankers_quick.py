"""Leave-one-target-out check of the graph and Fennec rankers against the priors, on the published targets.

For each modality and each of its 8 published TransferGraph targets: fit on every other record, score the models
recorded on the target, and compare with the actual accuracies by ``scipy.stats.weightedtau``. The table gives the
weighted mean (weight = max - mean actual accuracy, as the TransferGraph tables) and the plain mean.
A quick development check; the full comparison lives in ``benchmarks/transfergraph_bench.py``.

    python benchmarks/seed_rankers_quick.py --records /work/shared/data/transfergraph --json quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.finetune_records import (
    PUBLISHED_TARGETS,
    PUBLISHED_TRANSFERGRAPH_BEST,
    FinetuneRecords,
    load_target_tasks,
    load_transfergraph,
)
from hf_spider.hub.index import atomic_write, load_bundled_index
from hf_spider.rankers.baselines import CollaborativePrior, SizePrior
from hf_spider.rankers.fennec import FennecRanker
from hf_spider.rankers.graph import GraphRanker
from hf_spider.tokens.task import TaskTokens, task_tokens_from_labels

RANKERS = ("transfergraph_graph", "fennec", "collab_prior", "size_prior", "random")
#: loto: leave one target out; cold: also hide every record of the scored models (two halves per target).
PROTOCOLS = ("loto", "cold")


def target_tokens(cache: Path) -> dict[str, TaskTokens]:
    """Label-name tokens of every TransferGraph target, encoded once and kept in ``cache`` (MiniLM takes a while)."""
    if cache.is_file():
        with cache.open("rb") as f:
            return pickle.load(f)  # our own cache file, written below
    tokens = {name: task_tokens_from_labels(desc) for name, desc in load_target_tasks().items()}
    with atomic_write(cache, mode="wb") as f:
        pickle.dump(tokens, f)
    return tokens


def splits(protocol: str, truth_models: list[str], seed: int) -> list[list[str]]:
    """Target models scored together: all at once (loto), or two halves whose records are all hidden (cold)."""
    if protocol == "loto":
        return [truth_models]
    order = np.random.default_rng(seed).permutation(len(truth_models))
    return [[truth_models[i] for i in order[half::2]] for half in range(2)]


def evaluate(records_root: str, tokens: dict[str, TaskTokens], seed: int, protocol: str) -> dict[str, Any]:
    """Weighted tau per target and ranker; ``cold`` also hides every record of the scored models (unseen models)."""
    from scipy.stats import weightedtau

    records = load_transfergraph(records_root)
    index = {m.repo_id: m for m in load_bundled_index()}
    results: dict[str, Any] = {}
    for modality, targets in PUBLISHED_TARGETS.items():
        recs = records.for_modality(modality)
        per_target: dict[str, dict[str, float]] = {}
        fit_seconds: dict[str, list[float]] = {"transfergraph_graph": [], "fennec": []}
        for target in targets:
            truth = recs.accuracy[recs.accuracy.target == target].set_index("model").accuracy
            taus: dict[str, list[float]] = {n: [] for n in RANKERS}
            for group in splits(protocol, list(truth.index), seed):
                train = recs.without_target(target)
                models = [m for m in index.values() if m.modality == modality]
                if protocol == "cold":  # the scored models are unknown: no record, not in the fitted pool
                    keep = ~train.accuracy.model.isin(group)
                    train = FinetuneRecords(train.accuracy[keep].reset_index(drop=True), train.estimator_scores)
                    models = [m for m in models if m.repo_id not in set(group)]
                candidates = [index[m] for m in group]
                task = tokens[target]
                scores: dict[str, np.ndarray] = {}
                for name, ranker in (
                    ("transfergraph_graph", GraphRanker(seed=seed)),
                    ("fennec", FennecRanker(seed=seed)),
                ):
                    start = time.perf_counter()
                    ranker.fit(train, models, {t: v for t, v in tokens.items() if t != target})
                    fit_seconds[name].append(time.perf_counter() - start)
                    scores[name] = ranker.score(task, candidates)
                scores["collab_prior"] = CollaborativePrior(train).score(task, candidates)
                scores["size_prior"] = SizePrior().score(task, candidates)
                scores["random"] = np.random.default_rng(seed).random(len(candidates))
                actual = truth.loc[group].to_numpy()
                for name, s in scores.items():
                    taus[name].append(float(weightedtau(actual, np.nan_to_num(s, neginf=-1e9))[0]))
            per_target[target] = {name: float(np.mean(v)) for name, v in taus.items()}
            per_target[target]["weight"] = float(truth.max() - truth.mean())
        weights = np.array([per_target[t]["weight"] for t in targets])
        results[modality] = {
            "per_target": per_target,
            "weighted_mean": {
                n: float(np.dot(weights, [per_target[t][n] for t in targets]) / weights.sum()) for n in RANKERS
            },
            "mean": {n: float(np.mean([per_target[t][n] for t in targets])) for n in RANKERS},
            "fit_seconds_mean": {n: float(np.mean(v)) for n, v in fit_seconds.items()},
            "published_transfergraph_best": PUBLISHED_TRANSFERGRAPH_BEST[modality],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="/work/shared/data/transfergraph", help="shared/data/transfergraph")
    parser.add_argument("--tokens-cache", type=Path, default=Path(".hf_spider_cache/transfergraph_target_tokens.pkl"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--protocol", choices=PROTOCOLS, action="append", help="run only these (default: both)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.tokens_cache.parent.mkdir(parents=True, exist_ok=True)
    tokens = target_tokens(args.tokens_cache)
    results = {protocol: evaluate(args.records, tokens, args.seed, protocol) for protocol in args.protocol or PROTOCOLS}
    for protocol, by_modality in results.items():
        print(f"\n{protocol}: weighted tau, weighted mean (weight = max - mean accuracy) and plain mean")
        print(f"{'ranker':<24}" + "".join(f"{m + ' wmean':>14}{m + ' mean':>13}" for m in by_modality))
        for name in RANKERS:
            print(
                f"{name:<24}"
                + "".join(f"{r['weighted_mean'][name]:>14.3f}{r['mean'][name]:>13.3f}" for r in by_modality.values())
            )
        published = "".join(f"{PUBLISHED_TRANSFERGRAPH_BEST[m]:>14.3f}{'':>13}" for m in by_modality)
        print(f"{'published TransferGraph':<24}{published}")
    if args.json:
        import numpy
        import scipy
        import sklearn

        meta = {
            "protocols": {
                "loto": "leave one target out, 8 published targets per modality, scipy.stats.weightedtau",
                "cold": "loto + the scored models' records all hidden (2 random halves per target, mean tau)",
            },
            "seed": args.seed,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "versions": {"numpy": numpy.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
        }
        with atomic_write(args.json) as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
