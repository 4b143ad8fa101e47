"""The records folder: what ``hf-spider build-records`` writes, resumes from, pushes to the Hub and reads back.

Layout (``docs/records.md`` has every field)::

    <folder>/
      manifest.json       settings, datasets (with a digest of the samples read), tasks, candidates (pinned SHAs)
      tasks.npz           each task's tokens: class prototypes, label-name embeddings, statistics
      pairs/*.jsonl       one line per labelled (model, task) pair; one file per process and run
      README.md           dataset card (written when pushed to the Hub)

A pair is recorded by one ``write`` of one complete line to a file opened for appending, so a process killed at any
moment leaves every pair either whole or absent: a torn last line (the only possible damage) is skipped on reading
and its pair is labelled again by the next run. Each run appends to new files, never to an old one, and a pair is
planned only if no file holds it, so no pair is recorded twice; reading keeps the first line of a pair all the same.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidRecordsError
from ..finetune_records import FinetuneRecords, records_from_pairs
from ..hub.output_paths import atomic_write
from ..hub.records import finite_number
from ..tokens.task import TaskTokens

logger = logging.getLogger(__name__)

#: Identifies a records folder; bumped with any change of the layout or of a field's meaning.
FORMAT = "hf_spider.metarecords"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
TASKS_FILE = "tasks.npz"
PAIRS_FOLDER = "pairs"


@dataclass(frozen=True)
class PairRecord:
    """What labelling one (model, task) pair gave.

    Args:
        model: the candidate's repo id.
        sha: the revision that was run (``None`` for a local folder without one).
        task: the task id (``"<dataset>:<index>"``).
        modality: ``"image"`` or ``"text"``.
        estimators: estimator name -> raw value on the task's training samples (direction as in
            :data:`hf_spider.estimators.ESTIMATORS`); an estimator that could not run is absent.
        errors: what could not be measured and why, by estimator name or ``"accuracy"`` (NCE on a model without a
            classification head, a fine-tune that failed); the rest of the pair is still recorded.
        accuracy: mean held-out accuracy of the short fine-tunes, ``None`` when the pair was not fine-tuned.
        accuracy_per_seed: the accuracy of each fine-tuning seed.
        error: why the model could not be run at all (unsafe, unloadable, out of memory); then nothing else is set.
        seconds: wall seconds of this pair's parts (``estimate``, ``finetune``); feature extraction is shared by a
            model's tasks and counted in the run summary.
    """

    model: str
    sha: str | None
    task: str
    modality: str
    estimators: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    accuracy: float | None = None
    accuracy_per_seed: tuple[float, ...] = ()
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.task)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sha": self.sha,
            "task": self.task,
            "modality": self.modality,
            "estimators": dict(self.estimators),
            "errors": dict(self.errors),
            "accuracy": self.accuracy,
            "accuracy_per_seed": list(self.accuracy_per_seed),
            "error": self.error,
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairRecord:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: an accuracy that is not a number in 0..1, or an estimator value that is not finite. Python's
                ``json`` reads ``Infinity``, ``NaN`` and ``1e309`` (inf), which :class:`Journal` never writes; such
                a line was read as is and trained on.
        """
        return cls(
            model=str(data["model"]),
            sha=data.get("sha"),
            task=str(data["task"]),
            modality=str(data["modality"]),
            estimators={
                str(k): finite_number(v, f"estimator '{k}'") for k, v in (data.get("estimators") or {}).items()
            },
            errors={str(k): str(v) for k, v in (data.get("errors") or {}).items()},
            accuracy=None if data.get("accuracy") is None else _accuracy(data["accuracy"]),
            accuracy_per_seed=tuple(_accuracy(a) for a in data.get("accuracy_per_seed") or ()),
            error=data.get("error"),
            seconds={str(k): float(v) for k, v in (data.get("seconds") or {}).items()},
        )


def _accuracy(value: Any) -> float:
    """``value`` as an accuracy, a ``float`` in 0..1 (see :meth:`PairRecord.from_dict`)."""
    accuracy = finite_number(value, "accuracy")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy {accuracy:g} is outside 0..1")
    return accuracy


class Journal:
    """An append-only file of pair lines, each written by a single ``os.write`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, pair: PairRecord) -> None:
        line = (json.dumps(pair.to_dict(), sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
        written = os.write(self._fd, line)
        if written != len(line):  # a regular file takes a whole small write; anything else is a full disk
            raise OSError(f"only {written} of {len(line)} bytes of a record reached '{self.path}'; free some space")

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordsFolder:
    """Read and write one records folder (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    @property
    def tasks_path(self) -> Path:
        return self.path / TASKS_FILE

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, ``None`` when the folder holds none yet.

        Raises:
            InvalidRecordsError: the manifest is unreadable or of another format or version.
        """
        if not self.manifest_path.is_file():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRecordsError(
                f"'{self.manifest_path}' is not readable JSON ({exc}); restore it or start a new records folder"
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise InvalidRecordsError(
                f"'{self.path}' is not an hf-spider records folder (its {MANIFEST_FILE} has another format); "
                "pass the folder build-records wrote"
            )
        if manifest.get("format_version") != FORMAT_VERSION:
            raise InvalidRecordsError(
                f"records folder '{self.path}' has format version {manifest.get('format_version')} and this "
                f"hf-spider reads version {FORMAT_VERSION}; use a matching hf-spider or rebuild the records"
            )
        return manifest

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        with atomic_write(self.manifest_path) as f:  # compact: the task lists hold thousands of sample indices
            json.dump({"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}, f, sort_keys=True)
            f.write("\n")

    def journal(self, name: str) -> Journal:
        """A new journal file ``pairs/<name>.jsonl`` for one process of one run."""
        return Journal(self.path / PAIRS_FOLDER / f"{name}.jsonl")

    def read_pairs(self) -> list[PairRecord]:
        """Every recorded pair, once, in the order the files and lines were written (unreadable lines are skipped,
        the first one named in a warning; their pairs count as not done and are labelled again)."""
        seen: dict[tuple[str, str], PairRecord] = {}
        unreadable, first = 0, ""
        for where, line in self._lines():
            try:
                pair = PairRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                unreadable += 1
                first = first or f"{where} ({type(exc).__name__}: {str(exc)[:200]})"
                continue
            seen.setdefault(pair.key, pair)
        if unreadable:
            logger.warning(
                "skipped %d unreadable record line(s) in '%s', the first %s; their pairs count as not done",
                unreadable,
                self.path / PAIRS_FOLDER,
                first,
            )
        return list(seen.values())

    def _lines(self) -> Iterator[tuple[str, str]]:
        """``("<file> line <n>", text)`` of every complete line of the pair files."""
        folder = self.path / PAIRS_FOLDER
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.jsonl")):
            data = path.read_bytes()
            complete, _, _ = data.rpartition(b"\n")  # a last line without its newline was cut short
            if len(complete) + 1 < len(data):
                logger.warning("'%s' ends in a torn line; it is skipped", path)
            for n, raw in enumerate(complete.split(b"\n") if complete else (), start=1):
                yield f"{path.name} line {n}", raw.decode("utf-8", errors="replace")

    def write_task_tokens(self, tokens: Mapping[str, TaskTokens]) -> None:
        """All tasks' tokens as one ``.npz`` (``<task id>/<array>`` entries), written atomically."""
        arrays = {f"{task}/{name}": value for task, t in tokens.items() for name, value in t.to_npz_dict().items()}
        with atomic_write(self.tasks_path, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]

    def read_task_tokens(self) -> dict[str, TaskTokens]:
        """The tokens of every task, keyed by task id.

        Raises:
            InvalidRecordsError: the file is missing or unreadable.
        """
        if not self.tasks_path.is_file():
            raise InvalidRecordsError(
                f"records folder '{self.path}' has no {TASKS_FILE}; run build-records on it again to write it"
            )
        try:
            with np.load(self.tasks_path, allow_pickle=False) as data:
                grouped: dict[str, dict[str, np.ndarray]] = {}
                for key in data.files:
                    task, _, name = key.rpartition("/")
                    grouped.setdefault(task, {})[name] = data[key]
        except (OSError, ValueError) as exc:
            raise InvalidRecordsError(
                f"'{self.tasks_path}' is not readable ({exc}); run build-records on the folder again"
            ) from exc
        return {task: TaskTokens.from_npz_dict(arrays) for task, arrays in grouped.items()}


@dataclass(frozen=True, eq=False)
class MetaRecords:
    """A records folder read back: what ``train-scorer`` learns from.

    Args:
        records: estimator scores of every labelled pair and the fine-tuned accuracy of those that were fine-tuned
            (targets are task ids).
        tasks: task id -> the task's tokens (class prototypes from the general encoder, label names, statistics).
        pairs: every recorded pair as written, failures included (``error`` set).
        manifest: the build settings, datasets, tasks and candidates.
    """

    records: FinetuneRecords
    tasks: dict[str, TaskTokens]
    pairs: list[PairRecord]
    manifest: dict[str, Any]

    @property
    def failures(self) -> list[PairRecord]:
        return [p for p in self.pairs if p.error is not None]


def read_meta_records(path: str | os.PathLike[str]) -> MetaRecords:
    """Read a local records folder.

    Raises:
        InvalidRecordsError: the folder does not exist or is not a records folder.
    """
    folder = RecordsFolder(path)
    manifest = folder.read_manifest()
    if manifest is None:
        raise InvalidRecordsError(
            f"'{path}' holds no {MANIFEST_FILE}; pass a folder written by hf-spider build-records or a Hub dataset id"
        )
    pairs = folder.read_pairs()
    return MetaRecords(
        records=records_from_pairs(p.to_dict() for p in pairs),
        tasks=folder.read_task_tokens(),
        pairs=pairs,
        manifest=manifest,
    )
