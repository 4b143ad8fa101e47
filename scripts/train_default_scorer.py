"""Rebuild the shipped default scorer (``hf_spider/data/scorer``) from the bundled TransferGraph and MTEB records.

    python scripts/train_default_scorer.py [--metrics benchmarks/results/transfergraph.json] [--task-aware-only]

Two parts: the Model Spider scorer (TransferGraph's fine-tuning records) and, beside it as ``task_aware.npz``, the
task-aware model of :mod:`hf_spider.scorer.task_aware`, fitted on the MTEB linear-probe records and the TransferGraph
records together (its setting chosen on leave-a-group-out inner folds). ``--task-aware-only`` rebuilds the latter alone.

``--metrics`` states the benchmark figures in the model card (run ``benchmarks/transfergraph_bench.py`` first).
The same training as ``hf-spider train-scorer`` with its defaults (both parts), plus the card figures; that command
writes to ``./hf-spider-scorer`` and never into the package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


from hf_spider.cli.train_scorer import train_default
from hf_spider.scorer.protocols import default_protocol_records
from hf_spider.scorer.ranker import default_scorer_path
from hf_spider.scorer.task_aware import FILE_NAME, TaskAwareModel, train_task_aware
from hf_spider.scorer.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, help="benchmark JSON to quote in the model card")
    parser.add_argument("--output", type=Path, default=default_scorer_path())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task-aware-only", action="store_true", help=f"rebuild {FILE_NAME} alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    metrics = json.loads(args.metrics.read_text(encoding="utf-8")) if args.metrics else None
    started = time.perf_counter()
    if args.task_aware_only:
        train_task_aware(default_protocol_records()).save(args.output / FILE_NAME)
    else:  # the scorer, and the task-aware model beside it
        scorer = train_default(args.output, config=TrainConfig(seed=args.seed), metrics=metrics)
        logging.info("wrote %s: %d tasks, %d models", args.output, len(scorer.train_tasks), len(scorer.model_ids))
    task_aware = TaskAwareModel.load(args.output / FILE_NAME)
    logging.info(
        "wrote %s: %d models, protocols %s, setting %s (inner weighted tau %.3f), %.0f s",
        args.output / FILE_NAME,
        len(task_aware.model_ids),
        ", ".join(task_aware.protocols),
        task_aware.config,
        task_aware.confidence,
        time.perf_counter() - started,
    )


if __name__ == "__main__":
    main()
