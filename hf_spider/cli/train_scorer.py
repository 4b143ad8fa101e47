"""``hf-spider train-scorer``: train the Model Spider scorer from fine-tuning records.

It trains on the bundled TransferGraph records unless ``--records`` names a TransferGraph folder or a
``model,target,accuracy`` CSV, and writes to ``--output`` (default ``./hf-spider-scorer``) the scorer and, beside it,
the task-aware model fitted on MTEB's records and these together (``task_aware.npz``): a scorer of a team's own
records still ranks MTEB's encoders for the task. A user's training never writes into the installed package: the
shipped default scorer is rebuilt with ``scripts/train_default_scorer.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..scorer.model import TransferScorer
    from ..scorer.train import TrainConfig
    from ..tokens.task import TaskTokens

from ..hub.push import check_can_push
from ._types import nonnegative_number, output_path, positive_int, seed

logger = logging.getLogger(__name__)

#: Where a trained scorer goes when ``--output`` is not given, relative to the current directory.
DEFAULT_OUTPUT = "hf-spider-scorer"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train-scorer",
        help="train the Model Spider scorer from fine-tuning records",
        description="Train the scorer listwise on recorded fine-tuning results and save it as a Hub-style folder.",
    )
    parser.add_argument(
        "--records",
        help="TransferGraph records folder, a CSV with columns model,target,accuracy[,modality], or the records of "
        "`hf-spider build-records` (its folder or Hub dataset repo id); 'bundled' (the default: the shipped "
        "TransferGraph records) or 'example' (the small shipped example history)",
    )
    parser.add_argument(
        "--candidates",
        default="bundled",
        help="records of the models: 'bundled' (default), an index file or a folder of model repos",
    )
    parser.add_argument(
        "--output",
        type=output_path,
        default=Path(DEFAULT_OUTPUT),
        help="folder to write config.json + model.safetensors + README.md + task_aware.npz (default: "
        f"./{DEFAULT_OUTPUT}, in the current directory; never the installed package, whose default scorer this does "
        "not replace)",
    )
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--members", type=positive_int, help="ensemble size (default: TrainConfig)")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (default: TrainConfig)")
    parser.add_argument(
        "--prior-strength",
        type=nonnegative_number,
        help="pull of the read-out back to its prior (default: TrainConfig; 0 learns it freely, right for records of "
        "hundreds of sampled tasks)",
    )
    parser.add_argument(
        "--content-path",
        action="store_true",
        help="also train the attention over the task tokens (class prototypes): the task's own samples then move the "
        "scores (use with build-records records, whose tasks have prototypes)",
    )
    parser.add_argument(
        "--push-to-hub", metavar="REPO_ID", help="also push the scorer and its task-aware model to this Hub model repo"
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..scorer.train import TrainConfig

    output = _checked_output(args.output)
    if args.push_to_hub:
        check_can_push("--push-to-hub")
    defaults = TrainConfig()
    config = TrainConfig(
        seed=args.seed,
        members=defaults.members if args.members is None else args.members,
        epochs=defaults.epochs if args.epochs is None else args.epochs,
        prior_strength=defaults.prior_strength if args.prior_strength is None else args.prior_strength,
        content_path=args.content_path,
    )
    scorer = train_default(output, records=args.records, candidates=args.candidates, config=config)
    print(f"scorer written to {output} ({len(scorer.train_tasks)} tasks, {len(scorer.model_ids)} models)")
    print(f"use it with: hf_spider.pipeline('model-selection', model='{output}')")
    if args.push_to_hub:
        print(f"pushed to {push_scorer_folder(output, args.push_to_hub, private=args.private)}")
    return 0


def push_scorer_folder(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Push what :func:`train_default` wrote (scorer, card and the task-aware model beside them) to the Hub model repo
    ``repo_id`` in one commit (:func:`~hf_spider.hub.push.push_folder`: retried, never a second empty commit), so a
    ranker loaded from the repo has both parts; the commit's URL. Other files of ``folder`` stay local. ``token``:
    default, the one ``hf auth login`` stored (or ``HF_TOKEN``).

    Raises:
        HubPushError: no write access, or a failure that outlasted the retries.
    """
    import shutil

    from huggingface_hub.utils import SoftTemporaryDirectory

    from ..hub.push import push_folder
    from ..scorer.task_aware import FILE_NAME as TASK_AWARE_FILE

    with SoftTemporaryDirectory() as tmp:
        for name in ("config.json", "model.safetensors", "README.md", TASK_AWARE_FILE):
            if (folder / name).is_file():
                shutil.copyfile(folder / name, Path(tmp) / name)
        return push_folder(
            tmp, repo_id, token=token, private=private, commit_message="Upload hf-spider scorer and task-aware model"
        )


def _checked_output(output: Path) -> Path:
    """``output`` resolved, refused before any training when it is no writable folder (a file, a read-only place),
    when a file it would write is not a regular file (a symbolic link, a folder), when it holds a ``config.json``
    that is not a scorer's (a project's own files would be replaced), or when it lies inside the installed package
    (an upgrade would also lose it)."""
    from ..errors import InvalidOutputError
    from ..hub.output_paths import check_output_dir, check_output_file
    from ..scorer.task_aware import FILE_NAME as TASK_AWARE_FILE

    check_output_dir(output, what="--output")
    for name in ("config.json", "model.safetensors", "README.md", TASK_AWARE_FILE):
        check_output_file(output / name, what="--output")
    config = output / "config.json"
    if config.is_file() and not _is_scorer_config(config):
        raise InvalidOutputError(
            f"--output '{output}' holds a config.json that is not a hf-spider scorer's, which training would "
            "replace; pass an empty or new folder, or one `hf-spider train-scorer` wrote"
        )

    package = Path(__file__).resolve().parents[1]  # hf_spider/, this file being hf_spider/cli/train_scorer.py
    resolved = output.resolve()
    if resolved == package or package in resolved.parents:
        raise InvalidOutputError(
            f"--output '{output}' is inside the installed hf_spider package; pass a folder outside it "
            "(the shipped default scorer is rebuilt with scripts/train_default_scorer.py)"
        )
    return resolved


def _is_scorer_config(path: Path) -> bool:
    """Whether ``path`` is the ``config.json`` of a saved scorer (its input width and token schema are recorded)."""
    import json

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and {"in_dim", "feature_schema_version"} <= config.keys()


def train_default(
    output: str | os.PathLike[str],
    *,
    records: str | os.PathLike[str] | None = None,
    candidates: str | os.PathLike[str] = "bundled",
    config: TrainConfig | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> TransferScorer:
    """Train on every record (both modalities) and save the scorer with its model card to ``output``, and beside it
    the task-aware model (``task_aware.npz``, :func:`~hf_spider.scorer.task_aware.train_task_aware`) fitted on MTEB's
    linear-probe records and these records together: the scorer ranks the models it has records of, the task-aware
    model the MTEB encoders it has not, read for the task. With the bundled records both are the shipped ones.

    Args:
        output: folder for ``config.json``, ``model.safetensors``, ``README.md`` and ``task_aware.npz``.
        records: a TransferGraph records folder, a ``model,target,accuracy`` CSV, or the records of
            ``hf-spider build-records`` (a folder with its ``manifest.json``, or a Hub dataset repo id): sampled
            tasks whose tokens carry class prototypes (default: the bundled TransferGraph records).
        candidates: the models' records: ``"bundled"``, an index file or a folder of repos.
        config: hyper-parameters.
        metrics: benchmark results (``benchmarks/transfergraph_bench.py --json``) to state in the card.

    Nothing is dropped unsaid: each kind of record left out gets one warning with how many and a few of them
    (:func:`~hf_spider.scorer.train.left_out_notes`: models the candidates do not describe, targets without label
    names or with fewer than two models; a target named like an MTEB task, whose MTEB records the task-aware model
    keeps), and when nothing is left to train on, one error says why.

    A CSV's (model, target) pair given on several rows is trained on its best run, with a warning that counts the
    pairs and dropped rows and shows the runs of a few: the best full fine-tuning run of a pair is the ground truth of
    every record this trains on (TransferGraph's, the bundled ones), since the rows of one pair are the runs of a
    sweep or of seeds and the best is what the model reaches once tuned. Averaging them would mix failed runs into the
    accuracy and put a team's records on another scale than the bundled ones; refusing them, as ``hf-spider
    evaluate`` does without ``--keep-best-run``, would refuse the one-row-per-run file the format is
    (:func:`~hf_spider.finetune_records.read_records_csv`). Identical copies of a run collapse to one by that rule.
    """
    from ..finetune_records import load_bundled_records, load_transfergraph, read_user_records, record_tasks
    from ..hub.output_paths import atomic_write
    from ..hub.sanitize import some_of
    from ..ranking import load_candidates
    from ..scorer.card import card_summary
    from ..scorer.protocols import load_mteb_records
    from ..scorer.task_aware import FILE_NAME as TASK_AWARE_FILE
    from ..scorer.task_aware import train_task_aware
    from ..scorer.train import TrainConfig, protocol_records, sample_encoders, train_scorer

    config = config or TrainConfig()
    tasks: Mapping[str, TaskTokens] | None = None
    labels: Mapping[str, Sequence[str]] = {}  # a records file's labels column: its own targets' class names
    if records is None:
        data = load_bundled_records()
        source = "the bundled TransferGraph records (hf_spider/data/finetune_records.csv)"
    elif (Path(records) / "manifest.json").is_file() or (
        not Path(records).exists() and not Path(records).suffix and "/" in str(records)  # a Hub dataset repo id
    ):
        from ..metarecords import load_meta_records

        meta = load_meta_records(records)
        data, tasks = meta.records, meta.tasks
        source = f"the sampled tasks of `hf-spider build-records` at {records} ({len(tasks)} tasks)"
    elif Path(records).is_dir():
        data, source = load_transfergraph(records), f"TransferGraph records at {records}"
    else:
        user = read_user_records(records, keep_best_run=True)
        data, labels, source = user.records, user.label_names, f"records file {Path(records).name}"
        for note in user.notes:  # the repeated pairs whose best run is kept, a percent scale read as such
            logger.warning("%s", note)
    models = load_candidates(candidates)
    tasks = tasks if tasks is not None else record_tasks(data, label_names=labels)
    summary = card_summary(data, source, config, metrics, sample_encoders=sample_encoders(tasks))
    scorer = train_scorer(data, models, tasks, config=config, summary=summary)
    scorer.save_pretrained(Path(output))
    with atomic_write(Path(output) / "README.md") as f:  # the mixin keeps an existing card; this one is ours
        f.write(str(scorer.generate_model_card()))
    label_names = {name: task.description.label_names for name, task in tasks.items()}
    mteb, own = load_mteb_records(), protocol_records(data, label_names)
    clash = sorted(set(own.tasks) & set(mteb.tasks))
    if clash:  # one task name, one list: the sum keeps MTEB's
        logger.warning(
            "%d target(s) of the records are named like an MTEB task, whose records the task-aware model keeps "
            "instead: %s; rename them to have the task-aware model learn from yours",
            len(clash),
            some_of(clash),
        )
    train_task_aware(mteb + own).save(Path(output) / TASK_AWARE_FILE)
    return scorer
