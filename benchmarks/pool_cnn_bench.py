"""Sanity check of the default pool's cold start: do real CNNs, ranked inside the default pool, keep an order closer
to their ImageNet top-1 than sorting them by parameter count does?

ImageNet top-1 is a *reference*, not the target (the scorer predicts fine-tuned accuracy on the task, and top-1 only
predicts it in part; Kornblith et al., CVPR 2019): this checks that the scorer reads each timm repo's ImageNet facts
and size through the cold-start path, rather than ranking by size alone. Nothing is tuned on it. Families: every
``timm/*`` repo of the pool whose architecture family is one of :data:`FAMILIES` and that has an ImageNet-1k top-1 in
``data/timm_facts.csv``. Kendall's tau (scipy) against top-1, per family and over all of them, for the scorer's
scores (the default pool ranked for each task of :data:`TASKS`) and for the parameter count.

    python benchmarks/pool_cnn_bench.py --json benchmarks/results/pool_cnn.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from hf_spider.hub.output_paths import atomic_write
from hf_spider.hub.pool import load_default_pool
from hf_spider.rankers import get_ranker
from hf_spider.ranking import rank, select_candidates
from hf_spider.tokens.build import task_tokens_from_labels
from hf_spider.tokens.task import TaskDescription

FAMILIES = ("resnet", "resnext", "efficientnet", "convnext", "regnet", "mobilenet_v3", "densenet", "mobilenet_v2")
TASKS = {
    "plant disease": ("healthy leaf", "rust", "scab", "mildew"),
    "pets": ("cat", "dog", "bird"),
    "skin lesions": ("benign", "malignant"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pool = load_default_pool()
    cnns = {
        r.repo_id: r
        for r in pool
        if r.extra.get("source") == "timm" and r.model_type in FAMILIES and r.imagenet_top1 is not None
    }
    ranker = get_ranker()
    candidates = select_candidates(pool, modality="image")
    result: dict[str, object] = {"families": list(FAMILIES), "models": len(cnns), "tasks": {}}
    for name, labels in TASKS.items():
        task = task_tokens_from_labels(TaskDescription(name=name, modality="image", label_names=labels))
        shortlist = rank(task, candidates, ranker=ranker)
        scores = {e.model_id: e.score for e in shortlist if e.model_id in cnns}
        rows = {}
        for family in (*FAMILIES, "all"):
            ids = [m for m in scores if family == "all" or cnns[m].model_type == family]
            if len(ids) < 5:
                continue
            top1 = np.array([cnns[m].imagenet_top1 for m in ids])
            rows[family] = {
                "n": len(ids),
                "tau_scorer": round(float(kendalltau([scores[m] for m in ids], top1).statistic), 3),
                "tau_params": round(float(kendalltau([cnns[m].num_parameters for m in ids], top1).statistic), 3),
            }
        result["tasks"][name] = rows  # type: ignore[index]
    text = json.dumps(result, indent=2)
    if args.json:
        with atomic_write(args.json) as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
