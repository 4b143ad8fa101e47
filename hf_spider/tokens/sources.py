"""Turn whatever the user points at (a ``datasets`` object, a local path, a Hub dataset id) into a task.

The steps have modules of their own: :mod:`.dataset_reader` reads the source into ``datasets`` (naming what
``datasets`` would refuse with a traceback), :mod:`.columns` finds the split, the label and input columns and the
classes, and :mod:`.row_checks` leaves out or refuses the rows that cannot be used as they are, with a note
(:attr:`TaskSource.notes`) for each change or assumption. A Hub dataset can also be described from its card alone
(:func:`describe_hub_dataset`), before any download.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidDatasetError
from .columns import detect_input, detect_label_column, label_statistics, pick_split, split_sizes
from .dataset_reader import first_line, load_source
from .row_checks import (
    id_like_labels_note,
    is_one_class_image_folder,
    labelled_rows,
    refuse_emptied_classes,
    without_unreadable_images,
)
from .task import TaskDescription

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSource:
    """A loaded split and what was detected about it.

    Args:
        description: the task (classes, counts, columns).
        dataset: the split, without the unreadable rows.
        unreadable: the image files of a local split that could not be read, left out of ``dataset`` and of the
            class counts (a warning names how many).
        notes: what was changed or assumed while reading the data (rows without a label left out, labels of mixed
            types), one line each; also logged as warnings and shown under the shortlist.
    """

    description: TaskDescription
    dataset: datasets.Dataset | datasets.IterableDataset
    unreadable: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def load_task_source(
    source: Any,
    *,
    split: str | None = None,
    config: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
    streaming: bool = False,
) -> TaskSource:
    """Load one split of a dataset and describe it as a classification task.

    Args:
        source: a ``datasets.Dataset`` / ``DatasetDict`` / ``IterableDataset`` / ``IterableDatasetDict``, a local
            path (image folder, CSV / JSON / Parquet file, ``save_to_disk`` folder) or a Hub dataset id.
        split: the split to use; default ``"train"`` when present, else the first split.
        config: the dataset configuration (Hub datasets with several).
        label_column / input_column: override the detected columns.
        streaming: stream a Hub dataset instead of downloading it whole.

    An image file that cannot be read is left out with a counted warning (:attr:`TaskSource.unreadable`), never
    silently; a split with no readable image is refused. The labels are checked here, before anything is encoded, as
    every entry point (``rank``, ``rerank``, ``build-records``, the pipeline) reads a dataset through this function: a
    label column where most rows are alone in their class is noted
    (:func:`~.row_checks.id_like_labels_note`).

    Raises:
        InvalidDatasetError: missing path, unknown layout, an empty, header-only or non-UTF-8 table, no label
            column, labels that are numbers with a fraction (a regression target), a single class or an empty split.
    """
    name, loaded = load_source(source, config=config, streaming=streaming)
    dataset, split_name = pick_split(name, loaded, split)
    features = dataset.features
    if features is None:  # an IterableDataset whose first rows were never read
        dataset = dataset._resolve_features()  # type: ignore[union-attr]
        features = dataset.features
    if label_column is None and is_one_class_image_folder(source, features):
        only = next(p.name for p in Path(source).iterdir() if p.is_dir())
        raise InvalidDatasetError(
            f"image folder '{name}' has a single class ('{only}'); ranking needs at least 2 classes: add a "
            "sub-folder per class"
        )
    label_column = label_column or detect_label_column(name, features)
    if label_column not in features:
        raise InvalidDatasetError(
            f"dataset '{name}' has no column '{label_column}' (columns: {', '.join(features)}); pass label_column= "
            "(--label-column)"
        )
    modality, input_column = detect_input(name, features, label_column, input_column)
    dataset, notes = labelled_rows(name, dataset, label_column)
    readable, unreadable = without_unreadable_images(name, dataset)
    label_names, class_counts, num_rows = label_statistics(name, readable, label_column)
    if unreadable:
        refuse_emptied_classes(name, dataset, readable, label_column, unreadable)
        dataset = readable
    if num_rows == 0:
        raise InvalidDatasetError(f"split '{split_name}' of dataset '{name}' is empty; pass a split with examples")
    if len(label_names) < 2:
        only = label_names[0] if label_names else "none"
        raise InvalidDatasetError(
            f"dataset '{name}' has a single class ('{only}') in split '{split_name}'; ranking needs at least 2 classes"
        )
    id_like = id_like_labels_note(name, label_column, class_counts, num_rows)
    notes = (*notes, id_like) if id_like else notes
    description = TaskDescription(
        name=name,
        modality=modality,
        label_names=tuple(label_names),
        num_examples=split_sizes(loaded, split_name, num_rows),
        label_column=label_column,
        input_column=input_column,
        source=name if config is None else f"{name}:{config}",
        class_counts=class_counts,
        local=isinstance(source, (str, os.PathLike)) and Path(source).exists(),
    )
    for note in notes:
        logger.warning("%s", note)
    return TaskSource(description=description, dataset=dataset, unreadable=unreadable, notes=notes)


def describe_hub_dataset(
    repo_id: str,
    *,
    config: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> TaskDescription:
    """Describe a Hub dataset from its card's ``dataset_info`` alone: label names and split sizes, no download.

    This is what ranks a task before its data is fetched: the description gives label-name and statistics tokens.

    Raises:
        InvalidDatasetError: the dataset is not reachable, or its card declares no usable features.
    """
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint).dataset_info(repo_id, revision=revision, token=token)
    except OSError as exc:  # HfHubHTTPError, RepositoryNotFoundError and offline errors are all OSErrors
        raise InvalidDatasetError(
            f"could not read the card of Hub dataset '{repo_id}' ({first_line(exc)}); check the id, the network or "
            "HF_HUB_OFFLINE"
        ) from exc
    card = info.card_data.to_dict() if info.card_data is not None else {}
    task = description_from_card(repo_id, card, config=config, label_column=label_column, input_column=input_column)
    return replace(task, source=task.name)  # where its samples will come from


def description_from_card(
    name: str,
    card: dict[str, Any],
    *,
    config: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
) -> TaskDescription:
    """A :class:`TaskDescription` from dataset-card YAML (``dataset_info``: features and splits), without samples.

    Raises:
        InvalidDatasetError: no ``dataset_info`` (or not for ``config``), no class labels, or a single class.
    """
    import datasets

    infos = card.get("dataset_info") or []
    infos = [infos] if isinstance(infos, dict) else list(infos)
    if config is not None:
        infos = [i for i in infos if i.get("config_name", "default") == config]
    if not infos or not infos[0].get("features"):
        which = f" for config '{config}'" if config else ""
        raise InvalidDatasetError(
            f"the card of dataset '{name}' has no dataset_info features{which}; load its data instead, or pass "
            "config= (--config)"
        )
    info = infos[0]
    features = datasets.Features._from_yaml_list(info["features"])
    label_column = label_column or detect_label_column(name, features)
    feature = features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel):
        raise InvalidDatasetError(
            f"column '{label_column}' of dataset '{name}' is not a class label in its card, so the classes are unknown "
            "before download; load its data instead, or pass label_column= (--label-column)"
        )
    if feature.num_classes < 2:
        raise InvalidDatasetError(
            f"dataset '{name}' declares {feature.num_classes} class(es); ranking needs at least 2"
        )
    modality, _ = detect_input(name, features, label_column, input_column)
    sizes = {s["name"]: int(s["num_examples"]) for s in info.get("splits") or [] if s.get("num_examples")}
    return TaskDescription(
        name=name if config is None else f"{name}:{config}",
        modality=modality,
        label_names=tuple(feature.names),
        num_examples=sizes,
    )
