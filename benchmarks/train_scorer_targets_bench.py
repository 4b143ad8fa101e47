"""Training time of the scorer against the number of training targets: 100 / 400 / 1,600 synthetic targets.

What a team's large records CSV gives ``hf-spider train-scorer``: every target its own group. One held-out transfer
space per group made training time grow with the square of the number of targets; now at most
``TRANSFER_SPACE_FOLDS`` spaces are fitted (:func:`hf_spider.scorer.train.fit_transfer_spaces`). Synthetic records:
``--models`` models, each target recorded on ``--per-target`` of them drawn at random, accuracies from a per-model
skill plus noise; random PTM tokens and label embeddings (the cost does not depend on their values; no encoder runs).
``train_scorer`` runs with the default ``TrainConfig``; the seconds of the transfer spaces are reported beside the
total. One run per size: the machine may
be shared, so the JSON records the load average around each run.

    nice -n 10 python benchmarks/train_scorer_targets_bench.py --json benchmarks/results/train_scorer_targets.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import hf_spider.scorer.train as train
from hf_spider.finetune_records import FinetuneRecords
from hf_spider.hub.output_paths import atomic_write
from hf_spider.tokens.ptm import PTMTokens, token_dim
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics

SIZES = (100, 400, 1_600)
#: Width of the default text encoder's embeddings (all-MiniLM-L6-v2).
TEXT_DIM = 384


def synthetic(
    targets: int, models: int, per_target: int, seed: int = 0
) -> tuple[FinetuneRecords, PTMTokens, dict[str, TaskTokens]]:
    """Records of ``targets`` targets, each on ``per_target`` of ``models`` models, with tokens and task tokens."""
    rng = np.random.default_rng(seed)
    ids = [f"org/model-{i}" for i in range(models)]
    skill = rng.standard_normal(models)
    rows = []
    for t in range(targets):
        chosen = rng.choice(models, per_target, replace=False)
        accuracy = 1.0 / (1.0 + np.exp(-(skill[chosen] + 0.5 * rng.standard_normal(per_target))))
        rows += [(ids[m], f"target-{t}", "image", float(a)) for m, a in zip(chosen, accuracy, strict=True)]
    records = FinetuneRecords(
        pd.DataFrame(rows, columns=["model", "target", "modality", "accuracy"]),
        pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"]),
    )
    features = rng.standard_normal((models, token_dim(TEXT_DIM))).astype(np.float32)
    tokens = PTMTokens(tuple(ids), features, TEXT_DIM, ancestors=tuple(() for _ in ids))
    tasks = {}
    for t in range(targets):
        description = TaskDescription(name=f"target-{t}", modality="image", label_names=("a", "b", "c"))
        tasks[description.name] = TaskTokens(
            description=description,
            label_embeddings=rng.standard_normal((3, TEXT_DIM)).astype(np.float32),
            statistics=task_statistics(description),
        )
    return records, tokens, tasks


def timed(function: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``function``, adding the seconds of each call to ``spent``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="numbers of targets")
    parser.add_argument("--models", type=int, default=120)
    parser.add_argument("--per-target", type=int, default=30, help="models recorded on each target")
    args = parser.parse_args()
    spent: list[float] = []
    train.fit_transfer_spaces = timed(train.fit_transfer_spaces, spent)  # type: ignore[assignment]
    runs = {}
    for size in args.sizes:
        records, tokens, tasks = synthetic(size, args.models, args.per_target)
        load = os.getloadavg()[0]  # the machine is shared: a busy one inflates every timing
        spent.clear()
        start = time.perf_counter()
        train.train_scorer(records, [], tasks, config=train.TrainConfig(), tokens=tokens)
        total = time.perf_counter() - start
        runs[str(size)] = {
            "seconds": total,
            "transfer_space_seconds": sum(spent),
            "load_average_1m_before": load,
            "load_average_1m_after": os.getloadavg()[0],
        }
        print(f"{size:>6,d} targets: {total:7.1f} s, of which transfer spaces {sum(spent):7.1f} s", flush=True)
    if args.json:
        result = {
            "targets": runs,
            "meta": {
                "models": args.models,
                "per_target": args.per_target,
                "text_dim": TEXT_DIM,
                "config": vars(train.TrainConfig()),
                "seed": 0,
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
        }
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
