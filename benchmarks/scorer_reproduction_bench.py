"""Is the shipped default scorer what ``scripts/train_default_scorer.py`` trains? Retrain it and compare.

Trains a scorer exactly as the script does (same records, candidates, ``TrainConfig`` and seed) into a temporary
folder, then ranks the bundled pool with both scorers for every training target (its label names, as ``hf-spider rank
--labels`` does) and compares: the largest difference of an expected percentile, and Kendall's tau between the two
rankings of each target. The stated tolerance: every score within ``--atol`` (default 1e-3) and every ranking's
Kendall tau at least ``--min-tau`` (default 0.99); the weights themselves are compared too (torch's CPU kernels may
sum in another order on another machine, so bit-identical weights are reported, not required).

    nice -n 10 python benchmarks/scorer_reproduction_bench.py --json benchmarks/results/scorer_reproduction.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_spider.cli.train_scorer import train_default
from hf_spider.finetune_records import load_bundled_records, record_tasks
from hf_spider.hub.index import load_bundled_index
from hf_spider.hub.output_paths import atomic_write
from hf_spider.scorer.model import TransferScorer
from hf_spider.scorer.ranker import default_scorer_path
from hf_spider.scorer.train import TrainConfig


def compare(shipped: TransferScorer, retrained: TransferScorer) -> dict:
    from scipy.stats import kendalltau

    models = load_bundled_index()
    tasks = record_tasks(load_bundled_records())
    per_task = {}
    for name, task in tasks.items():
        pool = [m for m in models if m.modality == task.description.modality]
        a, b = shipped.score(task, pool), retrained.score(task, pool)
        per_task[name] = {
            "max_abs_score_difference": float(np.max(np.abs(a - b))),
            "kendall_tau": float(kendalltau(a, b).statistic),
        }
    state_a, state_b = shipped.state_dict(), retrained.state_dict()
    weight_difference = max(float((state_a[k].float() - state_b[k].float()).abs().max()) for k in state_a)
    return {
        "max_abs_score_difference": max(v["max_abs_score_difference"] for v in per_task.values()),
        "min_kendall_tau": min(v["kendall_tau"] for v in per_task.values()),
        "max_abs_weight_difference": weight_difference,
        "identical_weights": weight_difference == 0.0,
        "per_task": per_task,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--atol", type=float, default=1e-3)
    parser.add_argument("--min-tau", type=float, default=0.99)
    args = parser.parse_args(argv)
    shipped = TransferScorer.from_pretrained(str(default_scorer_path()))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        retrained = train_default(Path(folder) / "scorer", config=TrainConfig(seed=0))
    seconds = time.perf_counter() - started
    result = compare(shipped, retrained)
    result.update(
        seconds_to_train=seconds,
        tolerance={"atol": args.atol, "min_kendall_tau": args.min_tau},
        reproduced=result["max_abs_score_difference"] <= args.atol and result["min_kendall_tau"] >= args.min_tau,
    )
    print(
        f"max |score difference| {result['max_abs_score_difference']:.2e}, min Kendall tau "
        f"{result['min_kendall_tau']:.4f}, max |weight difference| {result['max_abs_weight_difference']:.2e}: "
        f"{'reproduced' if result['reproduced'] else 'NOT reproduced'} within the stated tolerance"
    )
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return 0 if result["reproduced"] else 1


if __name__ == "__main__":
    sys.exit(main())
