"""Measured fine-tuning results, ``(model, target, accuracy)``: the training data of every learned ranker.

Three sources: the TransferGraph layout (``records.csv`` + ``transferability_score_records.csv`` per modality, see
``shared/data/transfergraph/README.md``), a simple CSV with the columns ``model,target,accuracy`` (optionally
``modality``), and the (model, sampled task) pairs ``hf-spider build-records`` labels with forward-pass estimators and
short fine-tunes (:func:`records_from_pairs`; :func:`hf_spider.metarecords.load_meta_records` reads the folder).
Ground truth follows the TransferGraph protocol: the best ``eval_accuracy`` of full fine-tuning runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import InvalidIndexError
from .tokens.task import TaskDescription

Modality = Literal["image", "text"]
TRANSFERGRAPH_FOLDERS: dict[str, str] = {"image": "image_classification", "text": "sequence_classification"}
#: Targets of the published TransferGraph tables, per modality (the benchmark protocol).
PUBLISHED_TARGETS: dict[str, tuple[str, ...]] = {
    "image": ("stanfordcars", "svhn", "caltech101", "pets", "cifar100", "flowers", "smallnorb_label_elevation", "dtd"),
    "text": (
        "rotten_tomatoes",
        "tweet_eval/irony",
        "tweet_eval/sentiment",
        "tweet_eval/offensive",
        "tweet_eval/hate",
        "tweet_eval/emotion",
        "glue/cola",
        "glue/sst2",
    ),
}
#: Rows of the published correlation tables that are forward-pass baselines, not TransferGraph variants.
PUBLISHED_BASELINE_ROWS = frozenset({"LogME", "Reg-H-Score"})
BUNDLED_RECORDS = "finetune_records.csv"
_JUNK_TARGETS = frozenset({"none", "0.1", "lora"})


@dataclass(frozen=True)
class FinetuneRecords:
    """Ground-truth accuracies and, when known, forward-pass estimator scores of (model, target) pairs.

    Args:
        accuracy: columns ``model, target, modality, accuracy`` (one row per pair, best full fine-tuning run).
        estimator_scores: columns ``model, target, modality, estimator, score`` (e.g. ``logme``, ``reg_hscore``).
    """

    accuracy: pd.DataFrame
    estimator_scores: pd.DataFrame

    def for_modality(self, modality: str) -> FinetuneRecords:
        return FinetuneRecords(
            self.accuracy[self.accuracy.modality == modality].reset_index(drop=True),
            self.estimator_scores[self.estimator_scores.modality == modality].reset_index(drop=True),
        )

    def without_target(self, target: str) -> FinetuneRecords:
        """Every record except those of ``target``: what a leave-one-target-out ranker may see."""
        return FinetuneRecords(
            self.accuracy[self.accuracy.target != target].reset_index(drop=True),
            self.estimator_scores[self.estimator_scores.target != target].reset_index(drop=True),
        )

    def matrix(self) -> pd.DataFrame:
        """Models x targets accuracy matrix (NaN where no run was recorded)."""
        return self.accuracy.pivot_table(index="model", columns="target", values="accuracy", aggfunc="max")

    @property
    def targets(self) -> list[str]:
        return sorted(self.accuracy.target.unique())


def load_transfergraph(
    root: str | os.PathLike[str], modalities: tuple[str, ...] = ("image", "text")
) -> FinetuneRecords:
    """Read the TransferGraph records folder (``shared/data/transfergraph``) for the given modalities."""
    root = Path(root)
    accuracy, scores = [], []
    for modality in modalities:
        folder = root / TRANSFERGRAPH_FOLDERS[modality]
        if not folder.is_dir():
            raise InvalidIndexError(f"no TransferGraph folder '{folder}'; pass the path of shared/data/transfergraph")
        runs = pd.read_csv(folder / "records.csv")
        runs = runs[~runs.finetuned_dataset.astype(str).isin(_JUNK_TARGETS)]
        if "peft_method" in runs:
            runs = runs[runs.peft_method.isna()]
        best = runs.groupby(["model", "finetuned_dataset"], as_index=False).eval_accuracy.max()
        best = best.rename(columns={"finetuned_dataset": "target", "eval_accuracy": "accuracy"})
        best["modality"] = modality
        accuracy.append(best[["model", "target", "modality", "accuracy"]])
        est = pd.read_csv(folder / "transferability_score_records.csv")
        est = est.assign(
            estimator=est.metric.str.replace("TransferabilityMethod.", "", regex=False).str.lower(),
            modality=modality,
        ).rename(columns={"target_dataset": "target"})
        est = est.groupby(["model", "target", "modality", "estimator"], as_index=False).score.mean()
        scores.append(est)
    return FinetuneRecords(
        pd.concat(accuracy, ignore_index=True).dropna(subset=["accuracy"]),
        pd.concat(scores, ignore_index=True).replace({"estimator": {"log_me": "logme"}}),
    )


def published_transfergraph_best(root: str | os.PathLike[str], modality: str) -> dict[str, Any]:
    """The paper's best TransferGraph variant on the published targets, by weighted and by plain mean weighted tau.

    Read from ``published/w-kendall_correlation.csv`` of the records folder. The paper picks its best variant per
    statistic after the fact; its ``average`` column is the weighted mean, so the plain mean is computed here from the
    same per-target values, and the best variant under each mean is chosen separately, as the paper does.

    Returns:
        ``{"weighted_mean": float, "plain_mean": float, "per_target": {target: float}}``; ``per_target`` is the row of
        the variant with the best weighted mean.
    """
    path = Path(root) / TRANSFERGRAPH_FOLDERS[modality] / "published" / "w-kendall_correlation.csv"
    if not path.is_file():
        raise InvalidIndexError(f"no published table '{path}'; pass the path of shared/data/transfergraph")
    table = pd.read_csv(path, index_col=0)
    variants = table.loc[~table.index.isin(PUBLISHED_BASELINE_ROWS)]
    per_target = variants[list(PUBLISHED_TARGETS[modality])]
    best = variants["average"].idxmax()
    return {
        "weighted_mean": float(variants["average"].max()),
        "plain_mean": float(per_target.mean(axis=1).max()),
        "per_target": {str(t): float(v) for t, v in per_target.loc[best].items()},
    }


def read_records_csv(path: str | os.PathLike[str]) -> FinetuneRecords:
    """Read the simple format: ``model,target,accuracy[,modality]``, one row per run (the best run per pair is kept).

    Raises:
        InvalidIndexError: a column is missing or an accuracy is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidIndexError(f"records file '{path}' does not exist; pass a CSV with model,target,accuracy")
    frame = pd.read_csv(path)
    missing = {"model", "target", "accuracy"} - set(frame.columns)
    if missing:
        raise InvalidIndexError(
            f"records file '{path}' lacks column(s) {', '.join(sorted(missing))}; expected model,target,accuracy"
        )
    values = pd.to_numeric(frame.accuracy, errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2  # 1-based, after the header line
        raise InvalidIndexError(f"records file '{path}' line {row} has a non-numeric accuracy; fix that row")
    frame = frame.assign(accuracy=values)
    if "modality" not in frame:
        frame["modality"] = None
    best = frame.groupby(["model", "target"], as_index=False, dropna=False).agg(
        accuracy=("accuracy", "max"), modality=("modality", "first")
    )
    empty_scores = pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"])
    return FinetuneRecords(best[["model", "target", "modality", "accuracy"]], empty_scores)


def records_from_pairs(pairs: Iterable[Mapping[str, Any]]) -> FinetuneRecords:
    """Records of labelled (model, task) pairs, as ``hf-spider build-records`` writes them (``docs/records.md``).

    Each pair is a mapping with ``model``, ``task``, ``modality``, ``estimators`` (name -> raw value, higher is better
    as :data:`hf_spider.estimators.ESTIMATORS` says), ``accuracy`` (held-out accuracy of the short fine-tune, ``None``
    when the pair was not fine-tuned) and ``error`` (a pair that failed gives no row). The task is the ``target``.
    """
    accuracy, scores = [], []
    for pair in pairs:
        if pair.get("error"):
            continue
        key = {"model": pair["model"], "target": pair["task"], "modality": pair["modality"]}
        if pair.get("accuracy") is not None:
            accuracy.append({**key, "accuracy": float(pair["accuracy"])})
        scores += [{**key, "estimator": name, "score": float(v)} for name, v in sorted(pair["estimators"].items())]
    return FinetuneRecords(
        pd.DataFrame(accuracy, columns=["model", "target", "modality", "accuracy"]),
        pd.DataFrame(scores, columns=["model", "target", "modality", "estimator", "score"]),
    )


def write_records_csv(records: FinetuneRecords, path: str | os.PathLike[str]) -> None:
    """Write the simple format atomically (estimator scores are not part of it)."""
    from .hub.index import atomic_write

    with atomic_write(path) as f:
        records.accuracy.sort_values(["modality", "target", "model"]).to_csv(f, index=False, lineterminator="\n")


def load_bundled_records() -> FinetuneRecords:
    """The TransferGraph ground truth shipped with the package (``data/finetune_records.csv``)."""
    path = Path(str(resources.files("hf_spider") / "data" / BUNDLED_RECORDS))
    return read_records_csv(path)


def normalised_accuracy(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Add ``norm_accuracy``: accuracy min-max scaled within each target (0 = worst model, 1 = best)."""
    grouped = accuracy.groupby("target").accuracy
    low, high = grouped.transform("min"), grouped.transform("max")
    return accuracy.assign(norm_accuracy=((accuracy.accuracy - low) / (high - low).replace(0, np.nan)).fillna(0.5))


def load_target_tasks() -> dict[str, TaskDescription]:
    """Descriptions (label names, sizes) of the TransferGraph targets, shipped as ``data/target_tasks.json``."""
    import json

    path = Path(str(resources.files("hf_spider") / "data" / "target_tasks.json"))
    return {t["name"]: TaskDescription.from_dict(t) for t in json.loads(path.read_text(encoding="utf-8"))}
