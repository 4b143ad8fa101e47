"""Measured fine-tuning results, ``(model, target, accuracy)``: the training data of every learned ranker.

Three sources: the TransferGraph layout (``records.csv`` + ``transferability_score_records.csv`` per modality, see
``shared/data/transfergraph/README.md``), a simple CSV with the columns ``model,target,accuracy`` (optionally
``modality``), and the (model, sampled task) pairs ``hf-spider build-records`` labels with forward-pass estimators and
short fine-tunes (:func:`records_from_pairs`; :func:`hf_spider.metarecords.load_meta_records` reads the folder).
Ground truth follows the TransferGraph protocol: the best ``eval_accuracy`` of full fine-tuning runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import InvalidIndexError, InvalidRecordsError
from .hub.index import not_a_file
from .hub.sanitize import escape_for_display, some_of
from .tokens.task import TaskDescription, TaskTokens

logger = logging.getLogger(__name__)

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
#: A small team history shipped as the worked example of ``hf-spider evaluate`` (see ``data/README.md``).
EXAMPLE_RECORDS = "example_records.csv"
#: Names that ``read_user_records`` (``--records``) takes for the records shipped with the package.
SHIPPED_RECORDS = {"bundled": BUNDLED_RECORDS, "example": EXAMPLE_RECORDS}
#: Optional column of the simple CSV naming a target's classes, separated by ``LABEL_SEPARATOR`` (``cat|dog``).
LABELS_COLUMN = "labels"
LABEL_SEPARATOR = "|"
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
        best = best_full_runs(pd.read_csv(folder / "records.csv"), f"{folder.name}/records.csv")
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
        pd.concat(accuracy, ignore_index=True),
        pd.concat(scores, ignore_index=True).replace({"estimator": {"log_me": "logme"}}),
    )


def best_full_runs(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """A TransferGraph ``records.csv`` (one row per run, as read: line ``i + 2`` is row ``i``) -> ``model, target,
    accuracy``: the best full fine-tuning run of each pair (LoRA runs and the junk targets dropped), the protocol's
    ground truth. A run without an accuracy (empty, NaN) gave none and is left out.

    Raises:
        InvalidRecordsError: a run's ``eval_accuracy`` is infinite (``inf``, ``1e309``) or not a number, named by
            its line of ``name``: ``train-scorer`` kept an infinite one as the pair's best run, and ``evaluate``
            named the row of the pairs it had grouped, not the file's line.
    """
    accuracy = pd.to_numeric(runs.eval_accuracy, errors="coerce")
    bad = np.isinf(accuracy) | (accuracy.isna() & runs.eval_accuracy.notna())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidRecordsError(
            f"{name} line {i + 2}: eval_accuracy {str(runs.eval_accuracy.iloc[i])[:40]} is not a finite number; fix "
            "or delete that run"
        )
    runs = runs.assign(eval_accuracy=accuracy)
    runs = runs[~runs.finetuned_dataset.astype(str).isin(_JUNK_TARGETS)]
    if "peft_method" in runs:
        runs = runs[runs.peft_method.isna()]
    best = runs.groupby(["model", "finetuned_dataset"], as_index=False).eval_accuracy.max()
    return best.rename(columns={"finetuned_dataset": "target", "eval_accuracy": "accuracy"}).dropna(subset=["accuracy"])


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

    The checks of :func:`read_user_records` apply (accuracies in 0..1 or 0..100, known modalities).

    Raises:
        InvalidIndexError: a column is missing or an accuracy is not a number (:class:`InvalidRecordsError`).
    """
    return read_user_records(path, keep_best_run=True).records


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
    return FinetuneRecords(  # typed even when empty (no pair fine-tuned): an object column would spread in a concat
        pd.DataFrame(accuracy, columns=["model", "target", "modality", "accuracy"]).astype({"accuracy": float}),
        pd.DataFrame(scores, columns=["model", "target", "modality", "estimator", "score"]).astype({"score": float}),
    )


def write_records_csv(records: FinetuneRecords, path: str | os.PathLike[str]) -> None:
    """Write the simple format atomically (estimator scores are not part of it)."""
    from .hub.output_paths import atomic_write

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


@dataclass(frozen=True)
class UserRecords:
    """A team's fine-tuning records, checked by :func:`read_user_records`.

    Args:
        records: the best accuracy of each (model, target) pair, in 0..1; ``modality`` is ``None`` where not given.
        label_names: class names per target, from the labels column or passed in.
        notes: what was repaired on the way (a percent scale, repeated pairs), one line each for the user.
        source: how the records are named in messages (the file name).
    """

    records: FinetuneRecords
    label_names: dict[str, tuple[str, ...]]
    notes: tuple[str, ...]
    source: str


def read_user_records(
    source: str | os.PathLike[str] | pd.DataFrame | FinetuneRecords,
    *,
    label_names: Mapping[str, Sequence[str]] | None = None,
    keep_best_run: bool = False,
) -> UserRecords:
    """Read and check fine-tuning records a user brings (``hf-spider evaluate --records``).

    Args:
        source: a CSV with ``model,target,accuracy[,modality][,labels]`` (one row per run), a TransferGraph records
            folder or ``records.csv`` (the best full fine-tuning run of each pair is its ground truth), a DataFrame
            with the CSV's columns, :class:`FinetuneRecords`, or ``"bundled"`` / ``"example"`` for the records
            shipped with the package.
        label_names: class names per target; they win over the labels column.
        keep_best_run: a (model, target) pair given on several rows of a CSV is an error unless this is set; then its
            best run is kept and the number of repeats is said in the notes.

    Accuracies are fractions (0..1) or percentages (0..100, divided by 100); a file must use one scale.

    Raises:
        InvalidRecordsError: a missing column or value, an accuracy that is not a number or out of range, a mix of
            scales, a repeated pair (without ``keep_best_run``), an unknown modality, unusable label names.
    """
    if isinstance(source, FinetuneRecords):
        return _checked(source.accuracy, "records", label_names, keep_best_run, scores=source.estimator_scores)
    if isinstance(source, pd.DataFrame):
        return _checked(source, "records", label_names, keep_best_run)
    if not os.fspath(source).strip():  # Path("") is the current folder, read as a TransferGraph folder
        raise InvalidRecordsError(
            "the records path is empty; pass a CSV with model,target,accuracy, a TransferGraph records folder, "
            "'bundled' or 'example'"
        )
    if isinstance(source, str) and source in SHIPPED_RECORDS:
        path = Path(str(resources.files("hf_spider") / "data" / SHIPPED_RECORDS[source]))
    else:
        path = Path(source)
    if path.is_dir():
        modalities = tuple(m for m, folder in TRANSFERGRAPH_FOLDERS.items() if (path / folder).is_dir())
        if not modalities:
            raise InvalidRecordsError(
                f"records folder '{path}' has neither {' nor '.join(TRANSFERGRAPH_FOLDERS.values())}; pass a "
                "TransferGraph records folder or a CSV with model,target,accuracy"
            )
        loaded = load_transfergraph(path, modalities)
        note = f"{path.name}: TransferGraph layout, the best full fine-tuning run of each (model, target) pair kept"
        return _checked(
            loaded.accuracy, path.name, label_names, keep_best_run, scores=loaded.estimator_scores, notes=[note]
        )
    if not path.is_file():
        raise InvalidRecordsError(
            f"records '{path}' {not_a_file(path)}; pass a CSV with model,target,accuracy, a TransferGraph records "
            "folder, 'bundled' or 'example'"
        )
    try:
        frame = pd.read_csv(path, dtype={"model": str, "target": str, LABELS_COLUMN: str, "modality": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InvalidRecordsError(f"records file '{path.name}' is not a readable CSV ({exc}); fix the file") from exc
    if {"finetuned_dataset", "eval_accuracy"} <= set(frame.columns):  # a TransferGraph records.csv on its own
        note = f"{path.name}: TransferGraph layout, the best full fine-tuning run of each (model, target) pair kept"
        return _checked(best_full_runs(frame, path.name), path.name, label_names, keep_best_run, notes=[note])
    return _checked(frame, path.name, label_names, keep_best_run, row_offset=2)  # line 1 is the header


def read_label_names(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """A JSON side file of label names: ``{"target": ["class 0", "class 1", ...], ...}``.

    Read as a candidate's ``config.json`` is (:func:`~hf_spider.hub.cards.read_head`): at most
    ``HubLimits.file_bytes``, so ``/dev/zero`` or a runaway file cannot exhaust the memory.

    Raises:
        InvalidRecordsError: the file is missing or not a regular file, larger than the cap, not JSON (nested too
            deep included), or not an object of lists of names.
    """
    import json

    from .hub.cards import read_head
    from .hub.sanitize import LIMITS

    path = Path(path)
    if not path.is_file():
        raise InvalidRecordsError(f"labels file '{path}' {not_a_file(path)}; pass a JSON file of label names")
    try:
        head, longer = read_head(path)
    except OSError as exc:
        raise InvalidRecordsError(
            f"labels file '{path}' cannot be read ({exc.strerror or exc}); fix or drop it"
        ) from exc
    if longer:
        raise InvalidRecordsError(
            f"labels file '{path}' is larger than {LIMITS.file_bytes // 2**20} MiB, too large for label names; pass "
            "a smaller file"
        )
    try:
        data = json.loads(head.decode("utf-8"))
    except RecursionError:  # "[[[[..." nested deeper than the parser goes
        raise InvalidRecordsError(f"labels file '{path}' nests too deep to be label names; fix or drop it") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRecordsError(f"labels file '{path}' is not readable JSON ({exc}); fix or drop it") from exc
    if not isinstance(data, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) for n in names) for names in data.values()
    ):
        raise InvalidRecordsError(
            f"labels file '{path}' must be a JSON object of target -> list of class names, e.g. "
            '{"my-dataset": ["cat", "dog"]}; fix the file'
        )
    return {str(target): tuple(names) for target, names in data.items()}


def _checked(
    frame: pd.DataFrame,
    name: str,
    label_names: Mapping[str, Sequence[str]] | None,
    keep_best_run: bool,
    *,
    scores: pd.DataFrame | None = None,
    row_offset: int = 0,
    notes: Sequence[str] = (),
) -> UserRecords:
    """The checks of :func:`read_user_records` on rows as given (``row_offset`` turns a row index into a file line;
    0: rows are named by index)."""
    frame = frame.reset_index(drop=True)
    notes = list(notes)

    def where(i: int) -> str:
        return f"line {i + row_offset}" if row_offset else f"row {i}"

    missing = {"model", "target", "accuracy"} - set(frame.columns)
    if missing:
        raise InvalidRecordsError(
            f"{name} lacks column(s) {', '.join(sorted(missing))}; expected model,target,accuracy[,modality][,labels]"
        )
    if frame.empty:  # a header alone: every later step would work on nothing
        raise InvalidRecordsError(f"{name} has no rows; add one row per fine-tuning run (model,target,accuracy)")
    for column in ("model", "target"):
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            raise InvalidRecordsError(f"{name} {where(int(np.flatnonzero(empty)[0]))} has no {column}; fill it in")
    frame = frame.assign(model=frame.model.astype(str).str.strip(), target=frame.target.astype(str).str.strip())
    values = pd.to_numeric(frame.accuracy, errors="coerce")
    if values.isna().any():
        raise InvalidRecordsError(
            f"{name} {where(int(np.flatnonzero(values.isna())[0]))} has no numeric accuracy; fix it"
        )
    outside = (values < 0) | (values > 100)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidRecordsError(f"{name} {where(i)}: accuracy {values[i]:g} is outside 0..1 and 0..100; fix that row")
    if values.max() > 1:
        fraction = values <= 1
        if fraction.any():
            i, j = int(np.flatnonzero(fraction)[0]), int(np.flatnonzero(~fraction)[0])
            raise InvalidRecordsError(
                f"{name} mixes accuracy scales ({where(i)}: {values[i]:g}, {where(j)}: {values[j]:g}); give every "
                "accuracy in 0..1 or every one in 0..100"
            )
        values = values / 100.0
        notes.append(f"{name}: accuracies read as percentages (0..100) and divided by 100")
    frame = frame.assign(accuracy=values)
    frame["modality"] = _modality_column(frame, name, where)
    repeated = frame.duplicated(["model", "target"], keep="first")
    if repeated.any():
        i = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((frame.model == frame.model[i]) & (frame.target == frame.target[i]))[0])
        if not keep_best_run:
            raise InvalidRecordsError(
                f"{name}: {int(repeated.sum())} row(s) repeat a (model, target) pair ({where(i)} repeats "
                f"'{frame.model[i]}' on '{frame.target[i]}' from {where(first)}); pass keep_best_run=True "
                "(--keep-best-run) to keep the best run of each pair, or remove the repeats"
            )
        notes.append(_repeats_note(frame, repeated, name))
    labels = {**_labels_column(frame, name, where), **{t: tuple(n) for t, n in (label_names or {}).items()}}
    for target, names in labels.items():
        if len(set(names)) < 2:
            raise InvalidRecordsError(
                f"{name}: target '{target}' has {len(set(names))} distinct label name(s); give at least 2"
            )
    best = frame.sort_values("accuracy", ascending=False, kind="stable").drop_duplicates(["model", "target"])
    accuracy = best.sort_index()[["model", "target", "modality", "accuracy"]].reset_index(drop=True)
    if scores is None:
        scores = pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"])
    return UserRecords(FinetuneRecords(accuracy, scores), labels, tuple(notes), name)


def _repeats_note(frame: pd.DataFrame, repeated: pd.Series, name: str) -> str:
    """The note of the pairs given on several rows, whose best run is kept: how many, how many rows were dropped, and
    the runs of the first few, so a user sees whether they were copies of one run or runs that disagree."""
    runs = (
        frame[frame.duplicated(["model", "target"], keep=False)]
        .groupby(["model", "target"], sort=False)
        .accuracy.agg(lambda a: sorted(a, reverse=True))
    )

    def show(pair: tuple[tuple[str, str], list[float]]) -> str:
        (model, target), (best, *dropped) = pair
        return (
            f"'{escape_for_display(model)}' on '{escape_for_display(target)}' ({best:g} kept, "
            f"{', '.join(f'{a:g}' for a in dropped)} dropped)"
        )

    return (
        f"{name}: kept the best run of {len(runs)} (model, target) pair(s) given more than once "
        f"({int(repeated.sum())} row(s) dropped): {some_of(list(runs.items()), show=show)}"
    )


def _modality_column(frame: pd.DataFrame, name: str, where: Any) -> pd.Series:
    """The ``modality`` column checked (``image``, ``text`` or empty; one per target), ``None`` where not given."""
    if "modality" not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    modality = frame.modality.where(frame.modality.notna() & (frame.modality.astype(str).str.strip() != ""), None)
    modality = modality.map(lambda m: None if m is None else str(m).strip().lower())
    wrong = modality.notna() & ~modality.isin(("image", "text"))
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise InvalidRecordsError(f"{name} {where(i)}: modality '{modality[i]}' is not image or text; fix that row")
    per_target = modality.dropna().groupby(frame.target).nunique()
    if (per_target > 1).any():
        raise InvalidRecordsError(
            f"{name}: target '{per_target[per_target > 1].index[0]}' is given two modalities; give it one"
        )
    return modality


def _labels_column(frame: pd.DataFrame, name: str, where: Any) -> dict[str, tuple[str, ...]]:
    """Label names per target from the optional labels column (``cat|dog``); one list per target."""
    if LABELS_COLUMN not in frame:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for i, (target, value) in enumerate(zip(frame.target, frame[LABELS_COLUMN], strict=True)):
        if not isinstance(value, str) or not value.strip():
            continue
        names = tuple(n.strip() for n in value.split(LABEL_SEPARATOR) if n.strip())
        if out.setdefault(target, names) != names:
            raise InvalidRecordsError(
                f"{name} {where(i)}: target '{target}' has a second, different list in the {LABELS_COLUMN} column; "
                "give one list per target"
            )
    return out


def record_tasks(
    records: FinetuneRecords,
    *,
    text_encoder: str | None = None,
    label_names: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, TaskTokens]:
    """Label-name task tokens of every target of ``records`` whose label names are known (see
    :func:`record_task_descriptions`); a target without is left out (logged) and cannot be trained on."""
    from .tokens.build import task_tokens_from_labels

    descriptions = record_task_descriptions(records, label_names=label_names)
    return {name: task_tokens_from_labels(d, text_encoder=text_encoder) for name, d in descriptions.items()}


def record_task_descriptions(
    records: FinetuneRecords, *, label_names: Mapping[str, Sequence[str]] | None = None
) -> dict[str, TaskDescription]:
    """Descriptions of the targets of ``records`` whose label names are known, nothing encoded yet.

    Label names come from ``label_names`` (a user's own targets), else the shipped TransferGraph targets, else the
    known dataset label lists (``food101``).
    """
    from .tokens.ptm import known_dataset_labels

    shipped = load_target_tasks()
    known = known_dataset_labels()
    modality = records.accuracy.groupby("target").modality.first().to_dict()
    out = {}
    for name in sorted(modality):
        description = shipped.get(name)
        if label_names and name in label_names and modality[name] in ("image", "text"):
            description = TaskDescription(name=name, modality=modality[name], label_names=tuple(label_names[name]))
        if description is None and name.lower() in known and modality[name] in ("image", "text"):
            description = TaskDescription(name=name, modality=modality[name], label_names=known[name.lower()])
        if description is None:
            logger.info("no label names known for target '%s'; it is left out of training", name)
            continue
        out[name] = description
    return out
