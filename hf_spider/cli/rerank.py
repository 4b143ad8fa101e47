"""``hf-spider rerank``: run the best candidates on the dataset's samples and re-score them (stage two).

Runs as is in one process, or over several with ``accelerate launch -m hf_spider.rerank ...`` (same arguments);
only the main process prints or writes the shortlist.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._output import FORMATS, emit_shortlist


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rerank",
        help="re-rank the best candidates with real forward passes",
        description="Run the top-k candidates on a few samples per class and re-score them with an estimator "
        "(LogME by default). Works under `accelerate launch -m hf_spider.rerank` to spread candidates over processes.",
    )
    task = parser.add_argument_group("task")
    task.add_argument("--dataset", required=True, help="image folder, table file, save_to_disk folder or Hub id")
    task.add_argument("--split", help="split to sample (default: train, else the first)")
    task.add_argument("--label-column", help="column holding the labels (default: detected)")
    task.add_argument("--input-column", help="column holding the images or texts (default: detected)")
    task.add_argument("--per-class", type=int, default=10, help="samples per class to run (default: 10)")
    task.add_argument("--seed", type=int, default=0, help="seed of the sample draw (default: 0)")

    pool = parser.add_argument_group("candidates")
    pool.add_argument("--shortlist", type=Path, help="stage-one shortlist JSON (`hf-spider rank --format json`)")
    pool.add_argument("--candidates", default="bundled", help="'bundled' (default), an index file or a folder of repos")
    pool.add_argument("--local-dir", help="read candidates from <local-dir>/<repo id> instead of the Hub")
    pool.add_argument("-k", "--top-k", type=int, default=5, help="how many of the best candidates to run (default: 5)")
    pool.add_argument("--max-forward-passes", type=int, help="budget of samples x candidates; shrinks -k to fit")
    pool.add_argument("--halving-rounds", type=int, default=1, help="successive-halving rounds (default: 1 = off)")

    run_group = parser.add_argument_group("running candidates")
    run_group.add_argument("--estimator", default="logme", help="registered estimator (default: logme)")
    run_group.add_argument("--batch-size", type=int, default=32, help="samples per forward pass (default: 32)")
    run_group.add_argument("--device-map", help="e.g. 'auto' to spread a large candidate over the visible devices")
    run_group.add_argument("--trust-remote-code", action="store_true", help="run repo code of configs with auto_map")
    run_group.add_argument("--allow-pickle", action="store_true", help="load weights that exist only as pickle files")

    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, default="table")
    out.add_argument("--output", type=Path, help="write the shortlist to this file instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..outputs.shortlist import Shortlist
    from ..ranking import load_candidates
    from ..rerank.combine import rerank_shortlist
    from ..rerank.distributed import estimator_spec, partial_state
    from ..rerank.forward import ForwardOptions
    from ..rerank.samples import load_samples
    from ..tokens.sources import load_task_source

    estimator_spec(args.estimator)  # fail on a bad name before reading anything
    state = partial_state()
    with state.main_process_first():  # the first process fills the datasets cache, the others read it
        source = load_task_source(
            args.dataset, split=args.split, label_column=args.label_column, input_column=args.input_column
        )
    try:
        samples = load_samples(source, per_class=args.per_class, seed=args.seed)
        candidates = load_candidates(args.candidates)
        if args.shortlist is not None:
            shortlist = Shortlist.from_json(args.shortlist.read_text(encoding="utf-8"))
        else:
            shortlist = _stage_one(source.description, candidates)
        reranked = rerank_shortlist(
            shortlist,
            samples,
            candidates,
            k=args.top_k,
            estimator=args.estimator,
            max_forward_passes=args.max_forward_passes,
            halving_rounds=args.halving_rounds,
            options=ForwardOptions(
                trust_remote_code=args.trust_remote_code,
                allow_pickle=args.allow_pickle,
                batch_size=args.batch_size,
                device_map=args.device_map,
                local_dir=args.local_dir,
            ),
        )
        if state.is_main_process:
            emit_shortlist(reranked, args.format, args.output)
        state.wait_for_everyone()
    finally:
        # Leave the process group explicitly: a gloo process that exits with its group still open can abort at
        # shutdown (SIGABRT) while its peer is still writing, which fails the whole `accelerate launch`.
        state.destroy_process_group()
    return 0


def _stage_one(description: Any, candidates: Any) -> Any:
    """Rank the pool with the default ranker, as ``hf-spider rank`` does, when no shortlist is given."""
    from ..ranking import default_ranker, rank, select_candidates
    from ..tokens.task import task_tokens_from_labels

    tokens = task_tokens_from_labels(description)
    return rank(tokens, select_candidates(candidates, modality=description.modality), ranker=default_ranker())
