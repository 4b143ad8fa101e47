"""``hf-spider evaluate``: how well each ranker would have chosen on your own fine-tuning history.

Prints the per-target table, the means and one recommendation line per modality; writes the figures as JSON and a
plot of per-target bars (atomically, so a failed run leaves no half file). The work is
:func:`hf_spider.evaluation.evaluate.evaluate_records`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..rankers import TRAINABLE_RANKERS
from ._types import names, output_path, seed

DEFAULT_OUTPUT_DIR = Path("hf-spider-evaluate")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="how well each ranker would have chosen on your own fine-tuning records",
        description="Replay your fine-tuning history: each ranker is fitted on your records plus the shipped ones "
        "(minus what the protocol hides) and ranks your models on each of your targets. Bad records stop the run "
        "with one line naming the fix.",
    )
    parser.add_argument(
        "--records",
        required=True,
        help="CSV with model,target,accuracy[,modality][,labels] (one row per run; accuracies in 0..1 or 0..100; "
        "labels: class names separated by '|'), a TransferGraph records folder or records.csv, or 'example' / "
        "'bundled' for the records shipped with hf-spider",
    )
    parser.add_argument(
        "--candidates",
        help="records of your models that the bundled index lacks: an index file (.jsonl/.parquet, e.g. from "
        "hf-spider crawl) or a folder of Hub-style model repos",
    )
    parser.add_argument(
        "--ranker",
        type=names,
        default=",".join(TRAINABLE_RANKERS),
        help=f"comma-separated rankers (default: all: {','.join(TRAINABLE_RANKERS)}); the priors always run",
    )
    parser.add_argument(
        "--protocol",
        type=names,
        default="loto,cold-start,mixed-pool",
        help="comma-separated protocols: loto (leave one target out), cold-start, mixed-pool (default: all three)",
    )
    parser.add_argument("--labels-file", type=Path, help='JSON {"target": ["class 0", "class 1", ...]} of label names')
    parser.add_argument(
        "--targets", type=names, help="comma-separated targets to rank (default: all; the others still train)"
    )
    parser.add_argument(
        "--keep-best-run", action="store_true", help="keep the best of several rows of a (model, target) pair"
    )
    parser.add_argument(
        "--allow-unknown-models",
        action="store_true",
        help="rank models that no candidate record describes from their repo id alone",
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the folds and of the learned rankers")
    parser.add_argument(
        "--output-dir",
        type=output_path,
        default=DEFAULT_OUTPUT_DIR,
        help=f"where evaluation.json and evaluation.png go (default: ./{DEFAULT_OUTPUT_DIR})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate_records
    from ..finetune_records import read_label_names
    from ..hub.output_paths import atomic_write, check_output_dir, check_output_file

    json_path, plot_path = args.output_dir / "evaluation.json", args.output_dir / "evaluation.png"
    check_output_dir(args.output_dir, what="--output-dir")  # before the work: a bad folder fails in a second
    for path in (json_path, plot_path):
        check_output_file(path, what="--output-dir")
    evaluation = evaluate_records(
        args.records,
        rankers=list(args.ranker),
        protocols=list(args.protocol),
        candidates=args.candidates,
        label_names=read_label_names(args.labels_file) if args.labels_file else None,
        targets=list(args.targets) if args.targets else None,
        keep_best_run=args.keep_best_run,
        allow_unknown_models=args.allow_unknown_models,
        seed=args.seed,
    )
    for note in evaluation.notes:
        print(f"note: {note}", file=sys.stderr)
    print(evaluation.to_text())
    with atomic_write(json_path) as f:
        f.write(evaluation.to_json() + "\n")
    with atomic_write(plot_path, "wb") as f:
        evaluation.plot().savefig(f, format="png", dpi=80)
    print(f"wrote {json_path} and {plot_path}", file=sys.stderr)
    return 0
