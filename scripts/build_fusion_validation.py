"""Build ``hf_spider/data/fusion_validation.csv``: what the stage-two fusion is fitted and validated on.

    python scripts/build_fusion_validation.py --shared ../shared            # every part (the zoo part: ~10 min)
    python scripts/build_fusion_validation.py --shared ../shared --only zoo-meta

One row per (source, target, model): the measured fine-tuned ``accuracy``, the model's ``model_type`` and
``num_parameters`` (for the stage-one stand-ins of :mod:`hf_spider.rerank.validation`), and one column per
forward-pass estimator:

* ``source = transfergraph``: the recorded LogME and regularised H-score of the TransferGraph records
  (``transferability_score_records.csv``, public repository TransferGraph/transfergraph, commit 0458aff), for the
  (model, target) pairs that also have a full fine-tuning accuracy; sizes and families from the bundled index.
* ``source = zoo``: every registered estimator that a forward pass on the target gives, computed here on the zoo's
  candidates (``benchmarks/zoo``, served from the loopback Hub and crawled as ``benchmarks/zoo/run.py`` does) with
  the 8 labelled examples per class the zoo's fine-tuning protocol trains on; accuracies from the zoo records.
* ``source = zoo-meta``: the zoo's meta-training records (``benchmarks/zoo/meta_records.csv.gz``: LogME, NCE and
  H-score of the zoo's candidates on tasks drawn from its *source* domains, never a zoo target, with the fine-tuned
  accuracy under the zoo's protocol): the first :data:`META_TASKS_PER_SOURCE` tasks of each source whose accuracy
  spread (max - mean) is at least :data:`META_MIN_SPREAD` (a task every model solves ranks nothing). The other
  estimators of :data:`ZOO_ESTIMATORS` are computed here on the same tasks (``benchmarks/zoo/meta_records.py``'s
  labelling without fine-tuning, about 2 minutes), so that every estimator set the validation compares is scored on
  every benchmark that can score it; the recomputed LogME, NCE and H-score must equal the recorded ones (same samples,
  same features), or the build stops.

Deterministic for a given zoo build (the samples are seeded and the estimators run on one thread).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hf_spider.estimators import ESTIMATORS, EstimatorSpec
from hf_spider.finetune_records import load_transfergraph
from hf_spider.hub.index import atomic_write
from hf_spider.ranking import load_candidates
from hf_spider.rerank.budget import DEFAULT_K
from hf_spider.rerank.halving import per_class_of_rounds, rounds_for
from hf_spider.rerank.validation import ESTIMATOR_SETS, HALVING_HELD, halving_column

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "hf_spider" / "data" / "fusion_validation.csv"
#: Estimators the zoo part computes: every registered one that needs only the target's samples.
ZOO_ESTIMATORS = ("logme", "reg_hscore", "hscore", "leep", "nce", "nleep", "gbc", "sfda", "transrate", "lfc", "pactran")
META_RECORDS = ROOT / "benchmarks" / "zoo" / "meta_records.csv.gz"
META_TASKS_PER_SOURCE = 2
META_MIN_SPREAD = 0.05
#: H-score's pseudo-inverse makes values near ``C - 1`` differ in floating-point noise from one run to another.
META_ATOL = {"hscore": 1e-3}
#: The successive-halving rounds of ``rank --dataset`` before the last run on the first 2 and 4 of the 8 samples per
#: class; the members of every estimator set the validation compares are recorded there too (``logme@2``, ...).
HALVING_PER_CLASS = tuple(per_class_of_rounds(HALVING_HELD, rounds_for(DEFAULT_K))[:-1])
HALVING_ESTIMATORS = tuple(dict.fromkeys(e for s in ESTIMATOR_SETS for e in s))
HALVING_COLUMNS = [halving_column(e, n) for n in HALVING_PER_CLASS for e in HALVING_ESTIMATORS]
COLUMNS = [
    "source", "modality", "target", "model", "model_type", "num_parameters", "accuracy", *ZOO_ESTIMATORS,
    *HALVING_COLUMNS,
]  # fmt: skip


def transfergraph_rows(shared: Path) -> pd.DataFrame:
    records = load_transfergraph(shared / "data" / "transfergraph")
    scores = records.estimator_scores.replace({"estimator": {"reg_h_score": "reg_hscore"}})
    wide = scores.pivot_table(index=["modality", "target", "model"], columns="estimator", values="score").reset_index()
    table = wide.merge(records.accuracy, on=["modality", "target", "model"], how="inner")
    index = {r.repo_id: r for r in load_candidates("bundled")}
    table["model_type"] = [index[m].model_type if m in index else None for m in table.model]
    table["num_parameters"] = [index[m].num_parameters if m in index else None for m in table.model]
    table["source"] = "transfergraph"
    return table


def zoo_rows() -> pd.DataFrame:
    sys.path.insert(0, str(ROOT / "benchmarks" / "zoo"))
    import run as zoo_run
    from build import ZooConfig, build, default_cache

    from hf_spider.errors import EstimatorInputError
    from hf_spider.rerank.distributed import estimate
    from hf_spider.rerank.forward import extract_features
    from hf_spider.rerank.samples import first_per_class
    from hf_spider.testing import LoopbackHub

    config = ZooConfig()
    zoo = build(config)
    truth = zoo.records.accuracy
    work = default_cache() / "run"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    with (
        LoopbackHub() as hub,
        tempfile.TemporaryDirectory(dir=work) as hf_cache,
        zoo_run._client_points_at(hub.endpoint, Path(hf_cache)),
    ):
        zoo_run._serve(hub, zoo.repos)
        candidates, _ = zoo_run._crawl(hub.endpoint, work)
        for target in sorted(truth.target.unique()):
            samples = zoo_run._samples(target, config.protocol)
            modality = samples.description.modality
            accuracy = truth[truth.target == target].set_index("model").accuracy
            for record in (c for c in candidates if c.modality == modality):
                features = extract_features(record, samples.inputs, modality=modality)
                row = {
                    "source": "zoo",
                    "modality": modality,
                    "target": target,
                    "model": record.repo_id,
                    "model_type": record.model_type,
                    "num_parameters": record.num_parameters,
                    "accuracy": float(accuracy[record.repo_id]),
                }
                probes = {name: (features, samples.labels) for name in ZOO_ESTIMATORS}
                for per_class in HALVING_PER_CLASS:  # the first per_class samples of each class: an early round
                    keep = first_per_class(samples.labels, per_class)
                    head = replace(
                        features,
                        features=features.features[keep],
                        probabilities=None if features.probabilities is None else features.probabilities[keep],
                    )
                    probes |= {halving_column(e, per_class): (head, samples.labels[keep]) for e in HALVING_ESTIMATORS}
                for column, (probe, labels) in probes.items():
                    try:
                        row[column] = estimate(column.partition("@")[0], probe, labels)
                    except EstimatorInputError as exc:
                        logging.warning("%s on %s: %s", column, record.repo_id, exc)
                        row[column] = np.nan
                rows.append(row)
            logging.info("zoo target %s done", target)
    return pd.DataFrame(rows)


def meta_rows(models: pd.DataFrame) -> pd.DataFrame:
    """The ``zoo-meta`` part; ``models`` (``model``, ``model_type``, ``num_parameters``) are the zoo's candidates."""
    meta = pd.read_csv(META_RECORDS).dropna(subset=["accuracy"])
    spread = meta.groupby("task").accuracy.agg(lambda a: a.max() - a.mean())
    tasks = pd.Series(sorted(spread.index[spread >= META_MIN_SPREAD]))
    chosen = tasks.groupby(tasks.str.split(":").str[0]).head(META_TASKS_PER_SOURCE)
    rows = meta[meta.task.isin(set(chosen))].rename(columns={"task": "target"})
    computed = meta_estimator_values().reindex(pd.MultiIndex.from_frame(rows[["target", "model"]]))
    for name in (*ZOO_ESTIMATORS, *HALVING_COLUMNS):
        values = computed[name].to_numpy()
        if name in rows:  # recorded: the recomputation must agree, or the samples or features differ
            recorded = rows[name].to_numpy(dtype=np.float64)
            if not np.allclose(values, recorded, rtol=1e-6, atol=META_ATOL.get(name, 1e-6), equal_nan=True):
                raise SystemExit(f"zoo-meta: recomputed {name} differs from the meta records; rebuild them first")
        else:
            rows[name] = values
    rows = rows.merge(models.drop_duplicates("model"), on="model", how="left")
    rows["source"] = "zoo-meta"
    return rows


def meta_estimator_values() -> pd.DataFrame:
    """``[(target, model), estimator]``: every estimator of :data:`ZOO_ESTIMATORS`, and of :data:`HALVING_COLUMNS`
    on the first samples of each class, on the zoo's meta-training tasks, labelled as ``benchmarks/zoo/meta_records.py``
    labels them (same tasks, samples and batches), without fine-tuning, into ``<zoo cache>/v1/meta_estimators``
    (resumable). The halving columns are registered for the run as estimators of their own."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "zoo"))
    import meta_records
    import torch
    from build import ZOO_VERSION, ZooConfig, build, default_cache, ensure_image_encoder

    from hf_spider.metarecords import read_meta_records

    torch.set_num_threads(1)  # as meta_records.py labels: the same batches on one thread give the same features
    for name in HALVING_ESTIMATORS:
        for per_class in HALVING_PER_CLASS:
            ESTIMATORS[halving_column(name, per_class)] = _on_first_per_class(ESTIMATORS[name], per_class)
    config = ZooConfig()
    output = default_cache() / f"v{ZOO_VERSION}" / "meta_estimators"
    repos, encoder = build(config).repos, ensure_image_encoder(config.protocol)
    estimators = (*ZOO_ESTIMATORS, *HALVING_COLUMNS)
    meta_records.label(repos, encoder, output, config.protocol, meta_records.TASKS_PER_SOURCE, 0, estimators)
    scores = read_meta_records(output).records.estimator_scores
    return scores.pivot_table(index=["target", "model"], columns="estimator", values="score")


def _on_first_per_class(spec: EstimatorSpec, per_class: int) -> EstimatorSpec:
    """``spec`` computed on the first ``per_class`` samples of each class of what it is given (a task's training
    samples in their drawn order, as ``TaskSamples.head`` keeps them)."""
    from hf_spider.rerank.samples import first_per_class

    def on_head(first: Any, labels: Any, **keywords: Any) -> float:
        keep = first_per_class(np.asarray(labels), per_class)
        return spec.fn(np.asarray(first)[keep], np.asarray(labels)[keep], **keywords)

    return replace(spec, name=halving_column(spec.name, per_class), fn=on_head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT / ".." / "shared", help="the shared data folder")
    parser.add_argument("--only", choices=("transfergraph", "zoo", "zoo-meta"), help="rebuild one part, keep the rest")
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    old = pd.read_csv(args.output) if args.only and args.output.is_file() else pd.DataFrame(columns=COLUMNS)
    parts = [old[old.source != args.only]] if args.only else []
    if args.only in (None, "transfergraph"):
        parts.append(transfergraph_rows(args.shared))
    if args.only in (None, "zoo"):
        parts.append(zoo_rows())
    if args.only in (None, "zoo-meta"):
        zoo = pd.concat([p for p in [*parts, old] if len(p)])
        parts.append(meta_rows(zoo[zoo.source == "zoo"][["model", "model_type", "num_parameters"]]))
    table = pd.concat([p for p in parts if len(p)], ignore_index=True).reindex(columns=COLUMNS)
    table["num_parameters"] = table.num_parameters.astype("Int64")
    table = table.sort_values(["source", "modality", "target", "model"]).reset_index(drop=True)
    with atomic_write(args.output) as f:
        table.to_csv(f, index=False, lineterminator="\n", float_format="%.8g")
    print(f"wrote {len(table)} rows to {args.output}")


if __name__ == "__main__":
    main()
