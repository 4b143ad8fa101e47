"""Transfer records of several protocols in one table, each record keeping its protocol.

The task-aware model (:mod:`hf_spider.scorer.task_aware`) learns from every public transfer record the package ships:

* ``finetune``: TransferGraph's best full fine-tuning accuracy (``data/finetune_records.csv``), and a team's own records
  (``hf-spider evaluate --records``) or the fine-tuned sampled tasks of ``hf-spider build-records``, which are the
  same kind;
* ``linear_probe``: MTEB's classification accuracy, a logistic regression on frozen embeddings (``data/mteb/``, copied
  byte-identically from the MTEB results; its README gives the sources and the commit);
* ``estimator``: sampled tasks of ``hf-spider build-records`` that were labelled by forward-pass estimators only,
  ranked by the estimators' ensemble (:func:`hf_spider.scorer.train.training_labels`; what ``hf-spider train-scorer``
  reads, :func:`hf_spider.scorer.train.protocol_records`).

Beside the scores, what a model says about its own training: MTEB's model metadata lists the tasks whose data each
model was trained on (``data/mteb/training_tasks.csv``). A model trained on a task's own training data ranks higher
on it than its strength elsewhere predicts, so the records carry those declarations (:attr:`ProtocolRecords.declared`)
and a task to rank is matched to the MTEB tasks it is (:func:`mteb_tasks_named`).

Scores of different protocols are not on one scale (a fine-tune reaches 0.95 where a probe reaches 0.70), so each
task's scores are z-scored over the models recorded on it: the per-protocol calibration is per task, and a model's
position in a task is what the model learns. A task also carries what a user could say about it: its name, a free-text
description and its label names (any may be missing).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..finetune_records import FinetuneRecords, load_target_tasks
from ..hub.dataset_ids import dataset_keys
from ..tokens.ptm import known_dataset_labels

PROTOCOLS = ("finetune", "linear_probe", "estimator")
MTEB_FOLDER = "mteb"
#: A task where at least this share of the models has one accuracy is a collapsed run (the probe predicted the
#: majority class): no ranking to learn from (``modal_score_share`` in ``data/mteb/tasks.csv``).
COLLAPSED_SHARE = 0.5
#: MTEB datasets whose label names the package already ships (``data/dataset_labels.json``), by MTEB's ``hf_dataset``:
#: MTEB's statistics list label names for one task only, so these give the label-name view of the tasks that have one.
MTEB_KNOWN_LABELS = {
    "mteb/amazon_polarity": "amazon_polarity",
    "mteb/emotion": "dair-ai/emotion",
    "mteb/DBpediaClassification": "dbpedia_14",
    "mteb/imdb": "imdb",
    "fancyzhx/ag_news": "ag_news",
}
#: Label names of further MTEB tasks, each with its source (the dataset card, or the two classes a ChemTEB dataset id
#: names): the label-name view has more than five tasks to be learned from.
MTEB_LABEL_NAMES = "mteb_label_names.csv"
#: The MTEB tasks each MTEB model declares it was trained on (``ModelMeta.training_datasets``; see its README).
MTEB_TRAINING_TASKS = "training_tasks.csv"


@dataclass(frozen=True)
class TaskText:
    """What a user could say about a task: its name, a description and its label names (any may be empty)."""

    name: str
    modality: str
    description: str = ""
    label_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtocolRecords:
    """``model, task, protocol, score`` rows (one per pair) and the text of every task.

    Args:
        scores: the measured score of each (model, task) pair under the task's protocol.
        tasks: the text of each task of ``scores``.
        declared: ``(model, task)`` pairs where the model declares it was trained on the task's data (MTEB's model
            metadata); pairs of tasks without records are kept, for tasks ranked later.
    """

    scores: pd.DataFrame
    tasks: Mapping[str, TaskText]
    declared: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def z_matrix(self) -> pd.DataFrame:
        """``[models, tasks]`` z-scores within each task (NaN where a model has no record); a task whose scores do
        not vary is left out."""
        wide = self.scores.pivot_table(index="model", columns="task", values="score", aggfunc="max")
        spread = wide.std(axis=0)
        wide = wide.loc[:, spread > 0]
        return (wide - wide.mean(axis=0)) / wide.std(axis=0)

    def protocol_of(self) -> dict[str, str]:
        """The protocol of each task."""
        return self.scores.groupby("task").protocol.first().to_dict()

    def without(self, protocol: str) -> ProtocolRecords:
        """These records less one protocol's."""
        kept = self.scores[self.scores.protocol != protocol]
        dropped = set(self.scores.task[self.scores.protocol == protocol])
        declared = frozenset(pair for pair in self.declared if pair[1] not in dropped)
        return ProtocolRecords(kept, {t: self.tasks[t] for t in kept.task.unique()}, declared)

    def __add__(self, other: ProtocolRecords) -> ProtocolRecords:
        clash = set(self.tasks) & set(other.tasks)
        parts = [s for s in (self.scores, other.scores[~other.scores.task.isin(clash)]) if not s.empty]
        # an empty part is left out of the concat: its columns (object when built from no rows) would make score object
        scores = pd.concat(parts, ignore_index=True) if parts else self.scores
        return ProtocolRecords(scores, {**other.tasks, **self.tasks}, self.declared | other.declared)


def mteb_dir() -> Path:
    """The MTEB records shipped with the package (``data/mteb``)."""
    return Path(str(resources.files("hf_spider") / "data" / MTEB_FOLDER))


def load_mteb_records(folder: str | Path | None = None) -> ProtocolRecords:
    """MTEB's linear-probe records (protocol ``linear_probe``); collapsed-run tasks are left out."""
    folder = Path(folder) if folder is not None else mteb_dir()
    scores = pd.read_csv(folder / "classification_scores.csv")
    tasks = pd.read_csv(folder / "tasks.csv", keep_default_na=False)
    kept = tasks[pd.to_numeric(tasks.modal_score_share, errors="coerce").fillna(0) < COLLAPSED_SHARE]
    known = known_dataset_labels()
    written = pd.read_csv(Path(str(resources.files("hf_spider") / "data" / MTEB_LABEL_NAMES)))
    written_labels = dict(zip(written.task, written.label_names, strict=True))
    texts = {}
    for row in kept.itertuples():
        labels = tuple(str(row.label_names).split("|")) if row.label_names else ()
        shipped = MTEB_KNOWN_LABELS.get(str(row.hf_dataset))
        if not labels and shipped is not None:
            labels = known.get(shipped, ())
        if not labels and row.task in written_labels:
            labels = tuple(str(written_labels[row.task]).split("|"))
        texts[str(row.task)] = TaskText(str(row.task), "text", str(row.description), labels)
    rows = scores[scores.task.isin(texts)].groupby(["model", "task"], as_index=False).main_score.max()
    frame = rows.rename(columns={"main_score": "score"}).assign(protocol="linear_probe")
    return ProtocolRecords(frame[["model", "task", "protocol", "score"]], texts, declared_training(folder))


@lru_cache(maxsize=4)
def declared_training(folder: str | Path | None = None) -> frozenset[tuple[str, str]]:
    """``(model, task)``: the MTEB tasks whose data each MTEB model declares it was trained on."""
    folder = Path(folder) if folder is not None else mteb_dir()
    table = pd.read_csv(folder / MTEB_TRAINING_TASKS)
    return frozenset(zip(table.model.astype(str), table.task.astype(str), strict=True))


def mteb_tasks_named(
    task_names: Collection[str | None], hub_datasets: Collection[str | None] = (), folder: str | Path | None = None
) -> set[str]:
    """The MTEB tasks a task to rank is: those ``task_names`` names (an MTEB task name, or any task a model declares),
    and those whose Hub dataset has the last part of one of ``hub_datasets`` (ids; a config after ``:`` is ignored):
    ``PolyAI/banking77`` is ``mteb/banking77``, since MTEB re-uploads the datasets it evaluates on. Case is ignored;
    an unknown name matches nothing. A local folder's name is no Hub dataset
    (:attr:`~hf_spider.tokens.task.TaskDescription.hub_dataset`)."""
    names = {name.strip().lower() for name in task_names if name}
    keys = dataset_keys(hub_datasets)
    where = str(folder) if folder is not None else None
    tasks = _mteb_task_datasets(where)
    named = {t for t in {*tasks, *(task for _, task in declared_training(where))} if t.lower() in names}
    return named | {t for t, dataset in tasks.items() if dataset.rsplit("/", 1)[-1].lower() in keys}


@lru_cache(maxsize=4)
def _mteb_task_datasets(folder: str | None) -> dict[str, str]:
    """MTEB task -> its Hub dataset id (``data/mteb/tasks.csv``)."""
    table = pd.read_csv((Path(folder) if folder is not None else mteb_dir()) / "tasks.csv", keep_default_na=False)
    return dict(zip(table.task.astype(str), table.hf_dataset.astype(str), strict=True))


def finetune_protocol_records(
    records: FinetuneRecords, label_names: Mapping[str, Sequence[str]] | None = None, *, protocol: str = "finetune"
) -> ProtocolRecords:
    """Fine-tuning records (TransferGraph, a team's) as protocol ``finetune`` (or ``protocol``: the estimator-ranked
    lists of sampled tasks are read the same way); label names from ``label_names``, else the shipped TransferGraph
    targets, else the known dataset label lists."""
    shipped = load_target_tasks()
    known = known_dataset_labels()
    frame = records.accuracy.rename(columns={"target": "task", "accuracy": "score"})
    texts = {}
    for task, modality in frame.groupby("task").modality.first().items():
        labels: Sequence[str] = ()
        if label_names and task in label_names:
            labels = label_names[task]
        elif task in shipped:
            labels = shipped[task].label_names
        else:
            labels = known.get(str(task).lower(), ())
        texts[str(task)] = TaskText(str(task), str(modality), "", tuple(labels))
    frame = frame.assign(protocol=protocol)[["model", "task", "protocol", "score"]]
    return ProtocolRecords(frame, texts)


def default_protocol_records() -> ProtocolRecords:
    """Every record the package ships: MTEB's linear probes and TransferGraph's fine-tunes."""
    from ..finetune_records import load_bundled_records

    return load_mteb_records() + finetune_protocol_records(load_bundled_records())


def readable_name(name: str) -> str:
    """A task name as words (``"TweetSentimentClassification"`` -> ``"Tweet Sentiment"``,
    ``"tweet_eval/irony"`` -> ``"tweet eval irony"``, ``"support_tickets.csv"`` -> ``"support tickets"``): what the
    name view embeds. A data file's suffix is no word of the task."""
    name = re.sub(r"\.(csv|tsv|jsonl|json|parquet)$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"Classification(\.v\d+)?$", "", name)
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return re.sub(r"[_/\-:.]+", " ", name).strip()


def mteb_task_group(task: str) -> str:
    """The a-priori group of an MTEB task (from its name and source dataset; decided before any result was seen):
    related tasks that must not vouch for each other when one of them is held out."""
    if "LegalBench" in task:
        return "LegalBench"
    rules = (
        ("MTOP", "MTOP"),
        ("Wikipedia", "ChemTEB"),
        ("SDS", "ChemTEB"),
        ("Amazon", "Amazon"),
        ("Tweet", "Tweet"),
        ("HUMETweet", "Tweet"),
        ("RuSciBench", "RuSciBench"),
    )
    for prefix, group in rules:
        if task.startswith(prefix):
            return group
    if "Toxic" in task:
        return "Toxic"
    if "Emotion" in task:
        return "Emotion"
    if "MultilingualSentiment" in task:
        return "MultilingualSentiment"
    return task


def group_sizes(groups: Sequence[str]) -> np.ndarray:
    """How many tasks share each task's group."""
    counts = pd.Series(list(groups)).value_counts()
    return np.array([counts[g] for g in groups], dtype=np.float64)
