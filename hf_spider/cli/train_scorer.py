"""``hf-spider train-scorer``: train the Model Spider scorer from fine-tuning records.

With no arguments it rebuilds the shipped default scorer from the bundled TransferGraph records and index
(``hf_spider/data/scorer``); ``--records`` takes the TransferGraph folder or a ``model,target,accuracy`` CSV.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train-scorer",
        help="train the Model Spider scorer from fine-tuning records",
        description="Train the scorer listwise on recorded fine-tuning results and save it as a Hub-style folder.",
    )
    parser.add_argument(
        "--records",
        help="TransferGraph records folder, or a CSV with columns model,target,accuracy[,modality] "
        "(default: the bundled TransferGraph records)",
    )
    parser.add_argument(
        "--candidates", default="bundled", help="records of the models: 'bundled' (default) or an index file"
    )
    parser.add_argument(
        "--output", type=Path, help="folder to write config.json + model.safetensors + README.md (default: shipped)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, help="ensemble size (default: TrainConfig)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: TrainConfig)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the scorer to this Hub model repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..scorer.ranker import default_scorer_path
    from ..scorer.train import TrainConfig, train_default

    defaults = TrainConfig()
    config = TrainConfig(
        seed=args.seed, members=args.members or defaults.members, epochs=args.epochs or defaults.epochs
    )
    output = args.output or default_scorer_path()
    scorer = train_default(output, records=args.records, candidates=args.candidates, config=config)
    print(f"scorer written to {output} ({len(scorer.train_tasks)} tasks, {len(scorer.model_ids)} models)")
    if args.push_to_hub:
        url = scorer.push_to_hub(args.push_to_hub, private=args.private)
        print(f"pushed to {url}")
    return 0
