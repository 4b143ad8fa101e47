"""Task-aware ranking on MTEB: does hf-spider rank text encoders *for the task*, better than a static list?

Ground truth: MTEB's linear-probe accuracies of 245 Hub text encoders on 164 English classification tasks
(``hf_spider/data/mteb``), z-scored within each task. Evaluated: the tasks with >= 20 models, by
``scipy.stats.weightedtau`` (plain mean over tasks). Two protocols:

* ``loto``: leave one task out (related tasks stay in training and may vouch for it);
* ``leave_group_out``: leave the task's a-priori group out (:func:`hf_spider.scorer.protocols.mteb_task_group`: MTOP,
  ChemTEB, LegalBench, the Amazon, Tweet, Toxic and Emotion families; every other task is its own group).

The model (:mod:`hf_spider.scorer.task_aware`) learns from the MTEB records of the training tasks and the TransferGraph
fine-tuning records together; each fold chooses its hyper-parameters on inner folds of its own training tasks, with the
same protocol (``SEARCH_SPACE``; the inner folds hold out MTEB tasks only, as the outer ones do), never on the held-out
task. A held-out task is read from its description, label names (where known) and name, and the models that declare
training on its data (MTEB's model metadata, ``hf_spider/data/mteb/training_tasks.csv``: what ``hf-spider rank`` reads
when the task is an MTEB task by name or Hub dataset) get the model's effect of declared training (measured on held-out
folds of the training tasks that have such models: :func:`hf_spider.scorer.task_aware.declared_effect`). Baselines: the
static prior (each model's mean z-score over the training tasks), the description nearest-neighbour prior (that mean
weighted by softmax(TF-IDF cosine / 0.1) of the task descriptions) and the size prior (log parameter count). Ablations:
no task features (the same model's static list, no declared training either), without declared training (the same model,
the effect not added), without the TransferGraph records, without MTEB records (then no encoder has a record, and the
cold start knows an encoder by its size: the size prior's figure), description only vs label names only on the tasks
that have both (each without declared training: what ``--labels`` or ``--task`` alone give). Task sensitivity: the mean
Kendall tau between the predicted rankings of two held-out tasks (over the models both have), beside the same figure for
their true rankings and for the description nearest-neighbour prior's, and both by kind of pair (two ChemTEB tasks, two
others, one of each). Exploratory, never shipped: ``task_sensitivity.tradeoff`` scales the task-specific part of
hf-spider's lists (its list minus the same model's static list) by 1, 2, 4 and 8 and reports the weighted tau and the
task sensitivity of each, to show what matching the truth's sensitivity would cost.

    python benchmarks/mteb_bench.py --json benchmarks/results/mteb_bench.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_spider.evaluation.metrics import weighted_tau as harness_tau
from hf_spider.finetune_records import load_bundled_records
from hf_spider.hub.output_paths import atomic_write
from hf_spider.scorer.protocols import (
    finetune_protocol_records,
    load_mteb_records,
    mteb_dir,
    mteb_task_group,
)
from hf_spider.scorer.task_aware import (
    MIN_MODELS,
    SEARCH_SPACE,
    TaskAwareConfig,
    TaskFeatures,
    fit_task_aware,
    record_features,
    select_config,
)

NN_TEMPERATURE = 0.1
#: Factors the task-specific part of hf-spider's lists is scaled by in the (exploratory) sensitivity trade-off.
SHARPEN = (1.0, 2.0, 4.0, 8.0)
PROTOCOLS: dict[str, Callable[[str], str]] = {"loto": lambda t: t, "leave_group_out": mteb_task_group}


def weighted_tau(truth: pd.Series, predicted: pd.Series) -> float:
    """The harness's weighted tau (:func:`hf_spider.evaluation.metrics.weighted_tau`) over the models of ``truth``; a
    model the ranker has no score for is ranked last."""
    return harness_tau(truth.to_numpy(), predicted.reindex(truth.index).fillna(-np.inf).to_numpy())


def static_prior(z: pd.DataFrame, train: list[str]) -> pd.Series:
    """Each model's mean z-score over the training tasks (0 for a model without any)."""
    return z[train].mean(axis=1).fillna(0.0)


def nn_prior(z: pd.DataFrame, train: list[str], task: str, similarity: pd.DataFrame) -> pd.Series:
    """The mean z-score weighted by softmax(TF-IDF cosine / temperature) of the descriptions; the static prior for a
    model without a record on any described training task."""
    if task not in similarity.index:  # a task without a description has no neighbour to weigh by
        return static_prior(z, train)
    described = [t for t in train if t in similarity.columns]
    sim = similarity.loc[task, described].to_numpy()
    weights = np.exp((sim - sim.max()) / NN_TEMPERATURE)
    values = z[described].to_numpy()
    known = ~np.isnan(values)
    total = (known * weights).sum(1)
    mean = (np.nan_to_num(values) * weights).sum(1) / np.maximum(total, 1e-12)
    return pd.Series(np.where(total > 1e-12, mean, static_prior(z, train).to_numpy()), index=z.index)


def size_prior() -> pd.Series:
    """Log parameter count of each MTEB model (the median where MTEB does not state it)."""
    models = pd.read_csv(mteb_dir() / "models.csv")
    size = np.log(pd.to_numeric(models.n_parameters, errors="coerce"))
    return pd.Series(size.fillna(size.median()).to_numpy(), index=models.model)


def run_protocol(
    name: str,
    z: pd.DataFrame,
    features: Mapping[str, TaskFeatures],
    evaluated: list[str],
    similarity: pd.DataFrame,
    protocol_of: Mapping[str, str],
    declared: frozenset[tuple[str, str]],
) -> tuple[dict[str, Any], dict[str, dict[str, pd.Series]]]:
    """Every fold of one protocol: per-task weighted tau of hf-spider, the baselines and the ablations; and the
    predictions of hf-spider and of the description nearest-neighbour prior (method -> task -> scores)."""
    group_of = PROTOCOLS[name]
    sizes = size_prior()
    per_task: dict[str, dict[str, float]] = {}
    predictions: dict[str, dict[str, pd.Series]] = {"hf_spider": {}, "description_nn_prior": {}, "static_list": {}}
    configs: dict[str, dict[str, float]] = {}
    for group in dict.fromkeys(group_of(t) for t in evaluated):
        held = [t for t in z.columns if group_of(t) == group]
        train = [t for t in z.columns if t not in held]
        config, _ = select_config(z[train], features, group_of, protocol_of=protocol_of, scored=("linear_probe",))
        configs[group] = {"rank": config.rank, "ridge_alpha": config.ridge_alpha}
        model = fit_task_aware(z[train], features, config, protocol_of=protocol_of, declared=declared)
        mteb_only = [t for t in train if protocol_of[t] == "linear_probe"]
        without_tg = fit_task_aware(z[mteb_only], features, config, protocol_of=protocol_of, declared=declared)
        index, index_mteb = pd.Index(model.model_ids), pd.Index(without_tg.model_ids)
        for task in (t for t in held if t in evaluated):
            truth = z[task].dropna()
            feats = features[task]
            marked = model.declared_on([task], declared)
            predictions["hf_spider"][task] = pd.Series(model.predict(feats, marked), index=index)
            predictions["static_list"][task] = pd.Series(model.predict(None), index=index)
            predictions["description_nn_prior"][task] = nn_prior(z, mteb_only, task, similarity)
            row = {
                "hf_spider": weighted_tau(truth, predictions["hf_spider"][task]),
                "static_prior": weighted_tau(truth, static_prior(z, mteb_only)),
                "description_nn_prior": weighted_tau(truth, predictions["description_nn_prior"][task]),
                "size_prior": weighted_tau(truth, sizes),
                "no_task_features": weighted_tau(truth, predictions["static_list"][task]),
                "without_transfergraph_records": weighted_tau(
                    truth,
                    pd.Series(without_tg.predict(feats, without_tg.declared_on([task], declared)), index=index_mteb),
                ),
                "without_declared_training": weighted_tau(truth, pd.Series(model.predict(feats), index=index)),
            }
            if {"description", "labels"} <= set(feats.views):
                for view in ("description", "labels"):
                    row[f"{view}_only"] = weighted_tau(truth, pd.Series(model.predict(feats.only(view)), index=index))
            per_task[task] = row
        print(
            f"{name} {group}: {configs[group]} "
            + " ".join(f"{t[:24]}={per_task[t]['hf_spider']:.3f}" for t in held if t in per_task),
            flush=True,
        )
    table = pd.DataFrame(per_task).T
    groups = table.groupby([mteb_task_group(t) for t in table.index]).mean()
    result: dict[str, Any] = {
        column: float(table[column].mean()) for column in table.columns if not column.endswith("_only")
    }
    result["gain_over_static_prior"] = result["hf_spider"] - result["static_prior"]
    result["per_task"] = {t: {k: float(v) for k, v in row.items() if v == v} for t, row in table.iterrows()}
    result["per_group"] = {g: {k: float(v) for k, v in row.items() if v == v} for g, row in groups.iterrows()}
    result["chosen_configs"] = configs
    return result, predictions


def sensitivity(z: pd.DataFrame, predictions: Mapping[str, pd.Series], evaluated: list[str]) -> dict[str, Any]:
    """Mean Kendall tau between two held-out tasks' predicted rankings, and between their true rankings, over the
    models both tasks have; and both by kind of pair (two ChemTEB tasks, two others, one of each), since the truth's
    figure is mostly ChemTEB against the rest."""
    taus: dict[str, dict[str, list[float]]] = {"predicted": {}, "true": {}}
    for a, b in itertools.combinations(evaluated, 2):
        common = z.index[z[a].notna() & z[b].notna()]
        if len(common) < MIN_MODELS:
            continue
        chem = sorted(mteb_task_group(t) == "ChemTEB" for t in (a, b))
        kind = {(True, True): "within_ChemTEB", (False, False): "within_others"}.get(tuple(chem), "ChemTEB_vs_others")
        for name, x, y in (
            ("predicted", predictions[a][common], predictions[b][common]),
            ("true", z.loc[common, a], z.loc[common, b]),
        ):
            tau = kendalltau(x, y).statistic
            taus[name].setdefault("all", []).append(tau)
            taus[name].setdefault(kind, []).append(tau)
    out: dict[str, Any] = {name: float(np.nanmean(by_kind["all"])) for name, by_kind in taus.items()}
    out["pairs"] = len(taus["true"]["all"])
    out["by_pair_kind"] = {
        name: {kind: float(np.nanmean(v)) for kind, v in by_kind.items() if kind != "all"}
        for name, by_kind in taus.items()
    }
    return out


def sensitivity_tradeoff(
    z: pd.DataFrame, predictions: Mapping[str, Mapping[str, pd.Series]], evaluated: list[str]
) -> dict[str, dict[str, float]]:
    """What matching the truth's task sensitivity would cost (exploratory, never shipped): hf-spider's task-specific
    part (its list minus the same model's static list) scaled by each factor of :data:`SHARPEN`, with the mean
    weighted tau and the task sensitivity of the sharpened lists."""
    out = {}
    for factor in SHARPEN:
        lists = {
            t: predictions["static_list"][t] + factor * (predictions["hf_spider"][t] - predictions["static_list"][t])
            for t in evaluated
        }
        out[f"{factor:g}"] = {
            "weighted_tau": float(np.mean([weighted_tau(z[t].dropna(), lists[t]) for t in evaluated])),
            "predicted": sensitivity(z, lists, evaluated)["predicted"],
        }
    return out


def description_vs_labels(results: Mapping[str, Any]) -> dict[str, Any]:
    """Description only vs label names only on the tasks that have both, per protocol."""
    out: dict[str, Any] = {}
    for protocol, result in results.items():
        rows = {t: r for t, r in result["per_task"].items() if "labels_only" in r}
        out[protocol] = {
            "tasks": sorted(rows),
            "description_only": float(np.mean([r["description_only"] for r in rows.values()])) if rows else None,
            "labels_only": float(np.mean([r["labels_only"] for r in rows.values()])) if rows else None,
            "all_views": float(np.mean([r["hf_spider"] for r in rows.values()])) if rows else None,
            "static_prior": float(np.mean([r["static_prior"] for r in rows.values()])) if rows else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with threadpool_limits(limits=1):  # thousands of small solves: BLAS threads would only contend
        run(args.json)


def run(output: Path | None) -> None:
    """Every protocol, the sensitivity and the ablations; printed, and written to ``output`` when given."""
    started = time.perf_counter()
    mteb = load_mteb_records()
    records = mteb + finetune_protocol_records(load_bundled_records())
    z = records.z_matrix()
    features = record_features(records)
    mteb_tasks = set(mteb.tasks)
    evaluated = [t for t in z.columns if t in mteb_tasks and z[t].notna().sum() >= MIN_MODELS]
    described = [t for t in z.columns if t in mteb_tasks and mteb.tasks[t].description]
    tfidf = TfidfVectorizer().fit_transform([mteb.tasks[t].description for t in described])
    similarity = pd.DataFrame((tfidf @ tfidf.T).toarray(), index=described, columns=described)
    results, predictions = {}, {}
    for protocol in PROTOCOLS:
        results[protocol], predictions[protocol] = run_protocol(
            protocol, z, features, evaluated, similarity, records.protocol_of(), records.declared
        )
    out: dict[str, Any] = {
        "loto": results["loto"],
        "leave_group_out": results["leave_group_out"],
        "task_sensitivity": {
            **sensitivity(z, predictions["leave_group_out"]["hf_spider"], evaluated),
            "predicted_loto": sensitivity(z, predictions["loto"]["hf_spider"], evaluated)["predicted"],
            "description_nn_prior": {
                p: sensitivity(z, predictions[p]["description_nn_prior"], evaluated)["predicted"] for p in PROTOCOLS
            },
            "tradeoff": {p: sensitivity_tradeoff(z, predictions[p], evaluated) for p in PROTOCOLS},
        },
        "ablations": {
            "no_task_features": {p: results[p]["no_task_features"] for p in PROTOCOLS},
            "without_transfergraph_records": {p: results[p]["without_transfergraph_records"] for p in PROTOCOLS},
            "without_declared_training": {p: results[p]["without_declared_training"] for p in PROTOCOLS},
            "without_mteb_records": {
                **{p: results[p]["size_prior"] for p in PROTOCOLS},
                "note": "no encoder has a record: the cold start ranks them by what the Hub says, the size prior here",
            },
            "description_vs_labels": description_vs_labels(results),
        },
        "evaluated_tasks": len(evaluated),
        "models": int(z.loc[:, evaluated].notna().any(axis=1).sum()),
        "search_space": {k: list(v) for k, v in SEARCH_SPACE.items()},
        "defaults": TaskAwareConfig().__dict__,
        "seconds": time.perf_counter() - started,
    }
    for protocol in PROTOCOLS:
        r = results[protocol]
        print(
            f"{protocol}: hf-spider {r['hf_spider']:.3f}  static {r['static_prior']:.3f}  "
            f"description-NN {r['description_nn_prior']:.3f}  size {r['size_prior']:.3f}  "
            f"no task features {r['no_task_features']:.3f}  without TG {r['without_transfergraph_records']:.3f}  "
            f"without declared training {r['without_declared_training']:.3f}"
        )
    print(f"task sensitivity: {out['task_sensitivity']}")
    if output:
        with atomic_write(output) as f:
            json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
