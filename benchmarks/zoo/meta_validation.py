"""Choose the meta-trained scorer's settings without looking at the zoo's targets: leave source datasets out.

The zoo's meta-training records (``meta_records.py``: tasks sampled from the 18 source datasets, labelled by
``hf-spider build-records``) are the only data the choice may see. Each validation source dataset is held out in
turn (all its sampled tasks, with their records), a scorer is trained on the others, and it ranks the held-out
dataset's fine-tuned tasks from their tokens (class prototypes included) and with the prototypes masked. The mean
weighted tau over those tasks picks the settings ``run.py`` uses for its ``meta_scorer`` rows.

    nice -n 10 python benchmarks/zoo/meta_validation.py --json benchmarks/zoo/meta_validation.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import ZOO_VERSION, default_cache

from hf_spider.hub.output_paths import atomic_write
from hf_spider.scorer.train import TrainConfig

#: Held out one at a time: three image and three text source datasets (half of each modality's families).
VALIDATION_SOURCES = ("digits-low", "shapes-b", "stripes-frequency", "blob-position", "topics-1", "topics-4")
#: The settings compared (one member each, to keep the run short; the shipped rows use the default ensemble).
CANDIDATES: dict[str, TrainConfig] = {
    "prior, no content path (the TransferGraph default)": TrainConfig(members=1),
    "free read-out, no content path": TrainConfig(members=1, prior_strength=0.0),
    "free read-out, content path": TrainConfig(members=1, prior_strength=0.0, content_path=True),
    "prior, content path": TrainConfig(members=1, content_path=True),
}


def validate(records_folder: Path, repos: Path) -> dict[str, Any]:
    """Mean weighted tau on the held-out sources' fine-tuned tasks, with and without prototypes, per setting."""
    from hf_spider.evaluation.metrics import weighted_tau
    from hf_spider.finetune_records import FinetuneRecords
    from hf_spider.hub.local import records_from_dir
    from hf_spider.metarecords import load_meta_records
    from hf_spider.scorer.pair import task_group
    from hf_spider.scorer.train import train_scorer

    meta = load_meta_records(records_folder)
    models = records_from_dir(repos)
    accuracy = meta.records.accuracy
    results = {}
    for name, config in CANDIDATES.items():
        started = time.perf_counter()
        taus: dict[str, list[float]] = {"prototypes": [], "masked": []}
        for source in VALIDATION_SOURCES:
            keep = [t for t in meta.tasks if task_group(t) != source]
            train = FinetuneRecords(
                meta.records.accuracy[meta.records.accuracy.target.isin(keep)],
                meta.records.estimator_scores[meta.records.estimator_scores.target.isin(keep)],
            )
            scorer = train_scorer(train, models, {t: meta.tasks[t] for t in keep}, config=config)
            for task_id in sorted(accuracy[accuracy.target.map(task_group) == source].target.unique()):
                task = meta.tasks[task_id]
                pool = [m for m in models if m.modality == task.description.modality]
                truth = accuracy[accuracy.target == task_id].set_index("model").accuracy
                truth = truth.reindex([m.repo_id for m in pool]).to_numpy()
                taus["prototypes"].append(weighted_tau(truth, scorer.score(task, pool)))
                masked = replace(task, prototypes=None)
                taus["masked"].append(weighted_tau(truth, scorer.score(masked, pool)))
        results[name] = {
            "w_tau": float(np.mean(taus["prototypes"])),
            "w_tau_prototypes_masked": float(np.mean(taus["masked"])),
            "tasks": len(taus["prototypes"]),
            "seconds": time.perf_counter() - started,
            "config": asdict(config),
        }
        print(f"{name:<52} {results[name]['w_tau']:7.3f} {results[name]['w_tau_prototypes_masked']:9.3f}", flush=True)
    return {"validation_sources": list(VALIDATION_SOURCES), "settings": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="zoo cache folder (default $HF_SPIDER_ZOO_CACHE)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    root = (args.cache or default_cache()) / f"v{ZOO_VERSION}"
    print(f"{'setting':<52} {'w_tau':>7} {'masked':>9}")
    result = validate(root / "meta_records", root / "repos")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
