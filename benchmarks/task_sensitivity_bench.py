"""How much the default ranker's list moves with the task, against how much true rankings move between real targets.

Stage one is meant to rank *for the task*. This ranks the bundled pool (the 349 TransferGraph models) with the shipped
default ranker for unrelated label sets of one modality (animals vs skin lesions vs aircraft vs digits; sentiment vs
topics vs toxicity) and reports the Kendall tau between each two lists (1.0: the same list whatever the task). The
reference is the same figure for the measured accuracies of two TransferGraph targets, over the models both have
(food101 left out: its runs sit at chance).

    python benchmarks/task_sensitivity_bench.py --json benchmarks/results/task_sensitivity.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_spider.finetune_records import load_bundled_records
from hf_spider.hub.index import load_bundled_index
from hf_spider.hub.output_paths import atomic_write
from hf_spider.ranking import default_ranker, rank
from hf_spider.tokens.build import task_tokens_from_labels
from hf_spider.tokens.task import TaskDescription

TASKS = {
    "image": {
        "animals": ("cat", "dog", "bird"),
        "skin lesions": ("benign", "malignant"),
        "aircraft": ("boeing 737", "airbus a320", "cessna 172"),
        "digits": tuple("0123456789"),
    },
    "text": {
        "sentiment": ("negative", "positive"),
        "topics": ("world", "sports", "business", "science"),
        "toxicity": ("toxic", "non-toxic"),
    },
}
#: Targets whose runs did not train (most models at one accuracy): no ranking to compare with.
FAILED_TARGETS = ("food101",)


def predicted_taus(modality: str) -> list[float]:
    """Kendall tau between the default ranker's lists of each two label sets of ``modality``."""
    pool = [m for m in load_bundled_index() if m.modality == modality]
    ranker = default_ranker()
    lists = []
    for name, labels in TASKS[modality].items():
        task = task_tokens_from_labels(TaskDescription(name=name, modality=modality, label_names=labels))
        scores = {e.model_id: e.score for e in rank(task, pool, ranker=ranker)}
        lists.append([scores[m.repo_id] for m in pool])
    return [float(kendalltau(a, b).statistic) for a, b in itertools.combinations(lists, 2)]


def true_taus(modality: str) -> list[float]:
    """Kendall tau between the measured accuracies of each two TransferGraph targets of ``modality``."""
    accuracy = load_bundled_records().accuracy
    accuracy = accuracy[(accuracy.modality == modality) & ~accuracy.target.isin(FAILED_TARGETS)]
    table = accuracy.pivot_table(index="model", columns="target", values="accuracy")
    taus = []
    for a, b in itertools.combinations(table.columns, 2):
        both = table[[a, b]].dropna()
        taus.append(float(kendalltau(both[a], both[b]).statistic))
    return taus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {}
    print(f"{'modality':8s} {'default ranker (label sets)':>30s} {'truth (TransferGraph targets)':>32s}")
    for modality in TASKS:
        predicted, truth = predicted_taus(modality), true_taus(modality)
        result[modality] = {
            "predicted": {"mean": float(np.mean(predicted)), "min": min(predicted), "max": max(predicted)},
            "true": {"mean": float(np.mean(truth)), "min": min(truth), "max": max(truth), "pairs": len(truth)},
        }
        p, t = result[modality]["predicted"], result[modality]["true"]
        print(
            f"{modality:8s} {p['mean']:>12.2f} ({p['min']:.2f} to {p['max']:.2f})"
            f" {t['mean']:>14.2f} ({t['min']:.2f} to {t['max']:.2f})"
        )
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
