"""``hf-spider rerank``: run the best candidates on the dataset's samples and re-score them (stage two).

Runs as is in one process, or over several with ``accelerate launch -m hf_spider.rerank ...`` (same arguments);
only the main process prints or writes the shortlist.

What the user sees is honest about what ran: the header names the estimators that actually scored candidates, a
candidate that could not be run is listed below every candidate that was not shown to be broken (re-ranked or not
run) and its reason is listed once below the table, and when no candidate could be run at all the command exits
with status 2 and one line saying why (offline with the weights missing from the cache, the ``hf download`` command
that fetches them). Library warnings go to the log (``--verbose``), not to the terminal.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import HfSpiderError
from ._forward import add_forward_arguments, forward_options, library_noise_to_log
from ._output import add_output_arguments, checked_output, emit_shortlist, output_format
from ._types import names, positive_int, seed


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rerank",
        help="re-rank the best candidates with real forward passes",
        description="Run the k best stage-one candidates on a few samples per class, score them with forward-pass "
        "estimators (LogME, NCE and Reg-H-Score by default) and fuse that with what stage one knows, each credited by "
        "how reliable a validation that never saw the reported benchmark found it. Works under "
        "`accelerate launch -m hf_spider.rerank` to spread candidates over processes.",
    )
    task = parser.add_argument_group("task")
    task.add_argument("--dataset", required=True, help="image folder, table file, save_to_disk folder or Hub id")
    task.add_argument("--split", help="split to sample (default: train, else the first)")
    task.add_argument("--label-column", help="column holding the labels (default: detected)")
    task.add_argument("--input-column", help="column holding the images or texts (default: detected)")
    task.add_argument("--per-class", type=positive_int, default=10, help="samples per class to run (default: 10)")
    task.add_argument("--seed", type=seed, default=0, help="seed of the sample draw (default: 0)")

    pool = parser.add_argument_group("candidates")
    pool.add_argument("--shortlist", type=Path, help="stage-one shortlist JSON (`hf-spider rank --format json`)")
    pool.add_argument("--candidates", default="bundled", help="'bundled' (default), an index file or a folder of repos")
    pool.add_argument(
        "--local-dir",
        help="read candidates from <local-dir>/<repo id> instead of the Hub (default: the --candidates folder, if one)",
    )
    pool.add_argument("-k", dest="k", type=int, default=5, help="how many of the best candidates to run (default: 5)")
    pool.add_argument(
        "--max-forward-passes", type=positive_int, help="budget of samples x candidates; shrinks -k to fit"
    )
    pool.add_argument(
        "--halving-rounds", type=positive_int, default=1, help="successive-halving rounds (default: 1 = off)"
    )

    run_group = parser.add_argument_group("running candidates")
    run_group.add_argument(
        "--estimator",
        type=names,
        default=None,
        help="registered estimator(s), comma-separated, fused as one view (default: logme,nce,reg_hscore, the set the "
        "fusion's validation chose)",
    )
    add_forward_arguments(run_group)

    add_output_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise HfSpiderError(f"-k must be >= 1 (how many candidates to run), got {args.k}; pass -k 5 for example")
    if args.top_k < 0:
        raise HfSpiderError(f"--top-k must be >= 0, got {args.top_k}; pass 0 to list every candidate")
    inputs = {"--dataset": args.dataset, "--shortlist": args.shortlist, "--candidates": args.candidates}
    checked_output(args.format, args.output, follow_symlinks=args.follow_symlinks, inputs=inputs)  # before any run
    with library_noise_to_log(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..outputs.shortlist import Shortlist
    from ..ranking import load_candidates
    from ..rerank.combine import rerank_shortlist
    from ..rerank.distributed import estimator_spec, partial_state
    from ..rerank.fusion import DEFAULT_ESTIMATORS
    from ..rerank.samples import load_samples
    from ..tokens.sources import load_task_source

    estimators: tuple[str, ...] | None = args.estimator
    for name in estimators or DEFAULT_ESTIMATORS:
        estimator_spec(name)  # fail on a bad name before reading anything
    state = partial_state()
    with state.main_process_first():  # the first process fills the datasets cache, the others read it
        source = load_task_source(
            args.dataset, split=args.split, label_column=args.label_column, input_column=args.input_column
        )
    # transformers' model machinery takes seconds to import: pay that while the samples and stage one are read
    warming = threading.Thread(target=_warm_up, args=(source.description.modality,), daemon=True)
    warming.start()
    try:
        samples = load_samples(source, per_class=args.per_class, seed=args.seed)
        candidates = load_candidates(args.candidates, modality=source.description.modality)
        if args.shortlist is not None:
            shortlist = Shortlist.read(args.shortlist)
        else:
            shortlist = _stage_one(source.description, candidates, local_dir=forward_options(args).local_dir)
        warming.join()  # imports are the process's start-up, not a cost of the candidates
        reranked = rerank_shortlist(
            shortlist,
            samples,
            candidates,
            k=args.k,
            estimators=estimators or DEFAULT_ESTIMATORS,
            max_forward_passes=args.max_forward_passes,
            halving_rounds=args.halving_rounds,
            options=forward_options(args),
        )
        if state.is_main_process:
            _emit(reranked, args)
        state.wait_for_everyone()
    finally:
        # Leave the process group explicitly: a gloo process that exits with its group still open can abort at
        # shutdown (SIGABRT) while its peer is still writing, which fails the whole `accelerate launch`.
        state.destroy_process_group()
    return 0


def _emit(reranked: Any, args: argparse.Namespace) -> None:
    """The shortlist cut to ``--top-k`` rows; in a table, each failure once below it instead of in its row."""
    shown = reranked.with_entries(reranked.entries[: args.top_k or None])
    failed = [e for e in reranked if e.error]
    fmt = output_format(args.format, args.output)
    if fmt != "json" and failed:
        note = "not re-ranked (see below)"
        shown = shown.with_entries([replace(e, error=note) if e.error else e for e in shown])
    emit_shortlist(shown, fmt, args.output, follow_symlinks=args.follow_symlinks)
    if failed and fmt != "json":
        stream = sys.stdout if args.output is None or str(args.output) == "-" else sys.stderr
        print(f"{_failure_count(reranked.metadata['rerank'], len(failed))}:", file=stream)
        for e in failed:
            print(f"  {e.model_id}: {e.error}", file=stream)


def _failure_count(meta: dict[str, Any], listed: int) -> str:
    """What the failures below the table are: those of the ``k`` that failed here, and those stage one could not read
    (never run, so not counted among the ``k``)."""
    run, unread = int(meta["failed"]), listed - int(meta["failed"])
    parts = [f"{run} of {meta['k']} candidates could not be re-ranked"] if run else []
    parts += [f"{unread} could not be read at stage one"] if unread else []
    return ", and ".join(parts) + " (listed below every candidate that was not shown to be broken)"


def _warm_up(modality: str) -> None:
    """Import, off the main thread, the libraries re-ranking needs: transformers' model machinery, the estimators,
    and SciPy's statistics (the fusion's ranks)."""
    import importlib

    from ..rerank.loading import warm_up

    warm_up(modality)
    for module in ("scipy.stats", "scipy.special", "hf_spider.estimators"):
        importlib.import_module(module)


def _stage_one(description: Any, candidates: Any, *, local_dir: str | None) -> Any:
    """Rank the pool with the default ranker, as ``hf-spider rank`` does, when no shortlist is given; ``local_dir``:
    the folder the candidates are read from (``--local-dir`` or a ``--candidates`` folder)."""
    from ..ranking import default_ranker, rank, select_candidates
    from ..tokens.build import task_tokens_from_labels

    tokens = task_tokens_from_labels(description)
    pool = select_candidates(candidates, modality=description.modality)
    return rank(tokens, pool, ranker=default_ranker(), local_dir=local_dir)
