"""Rebuild the shipped default scorer (``hf_spider/data/scorer``) from the bundled TransferGraph records.

    python scripts/train_default_scorer.py [--metrics benchmarks/results/transfergraph.json]

``--metrics`` states the benchmark figures in the model card (run ``benchmarks/transfergraph_bench.py`` first).
The same training as ``hf-spider train-scorer`` with its defaults, plus the card figures; that command writes to
``./hf-spider-scorer`` and never into the package.
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
from hf_spider.scorer.ranker import default_scorer_path
from hf_spider.scorer.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, help="benchmark JSON to quote in the model card")
    parser.add_argument("--output", type=Path, default=default_scorer_path())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    metrics = json.loads(args.metrics.read_text(encoding="utf-8")) if args.metrics else None
    started = time.perf_counter()
    scorer = train_default(args.output, config=TrainConfig(seed=args.seed), metrics=metrics)
    logging.info(
        "wrote %s: %d tasks, %d models, %.0f s",
        args.output,
        len(scorer.train_tasks),
        len(scorer.model_ids),
        time.perf_counter() - started,
    )


if __name__ == "__main__":
    main()
