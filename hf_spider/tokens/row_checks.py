"""The rows of a loaded split that cannot be used as they are: unreadable images, rows without a label, mixed labels.

What can be used with care is used and noted (:attr:`~.sources.TaskSource.notes`): rows without a label are left out
and counted, labels of mixed types (``"pos"`` and ``1``) are named, a label column where most rows are alone in their
class (an id or free-text column taken for the labels) is named. What cannot (a class whose every image is unreadable,
a one-class image folder, nested labels, fractional numbers that are a regression target) is refused with the fix.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path
from typing import Any

from ..errors import InvalidDatasetError
from .columns import label_statistics

logger = logging.getLogger(__name__)


def is_one_class_image_folder(source: Any, features: Any) -> bool:
    """A local image folder with one class sub-folder: ``imagefolder`` then infers no label column at all."""
    import datasets

    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        return False
    if not any(isinstance(f, datasets.Image) for f in features.values()):
        return False
    if any(isinstance(f, datasets.ClassLabel) for f in features.values()):
        return False
    return sum(1 for p in Path(source).iterdir() if p.is_dir() and not p.name.startswith(".")) == 1


def without_unreadable_images(name: str, dataset: Any) -> tuple[Any, tuple[str, ...]]:
    """``dataset`` without rows whose image cannot be opened, and those files; a warning counts them.

    Only in-memory splits are checked (a stream is never read whole; its sampler skips bad rows and counts them).
    ``PIL.Image.verify`` reads the header and, for PNG, checks every chunk, without decoding pixels.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        return dataset, ()
    columns = [c for c, f in dataset.features.items() if isinstance(f, datasets.Image)]
    if not columns:
        return dataset, ()
    raw = dataset.select_columns(columns[:1]).cast_column(columns[0], datasets.Image(decode=False))
    bad_rows, bad_files = [], []
    for i, value in enumerate(raw[columns[0]]):
        if not _image_is_readable(value):
            bad_rows.append(i)
            bad_files.append(str((value or {}).get("path") or f"row {i}"))
    if not bad_rows:
        return dataset, ()
    if len(bad_rows) == len(dataset):
        raise InvalidDatasetError(
            f"none of the {len(dataset)} images of dataset '{name}' can be read (first: {bad_files[0]}); "
            "check that the files are images"
        )
    logger.warning(
        "skipped %d unreadable image(s) of %d in dataset '%s' (first: %s); fix or delete them",
        len(bad_rows),
        len(dataset),
        name,
        bad_files[0],
    )
    bad = set(bad_rows)
    return dataset.select([i for i in range(len(dataset)) if i not in bad]), tuple(bad_files)


def refuse_emptied_classes(
    name: str, dataset: Any, readable: Any, label_column: str, unreadable: tuple[str, ...]
) -> None:
    """Name the classes whose every image is unreadable, rather than rank as if they had no examples."""

    def counts(split: Any) -> dict[str, int]:
        names, class_counts, _ = label_statistics(name, split, label_column)
        return dict(zip(names, class_counts or (), strict=True))

    before, after = counts(dataset), counts(readable)
    emptied = [label for label, count in before.items() if count and not after.get(label)]
    if emptied:
        raise InvalidDatasetError(
            f"class(es) {', '.join(repr(n) for n in emptied[:5])} of dataset '{name}' have no readable image "
            f"({len(unreadable)} unreadable, first: {unreadable[0]}); fix or delete those files"
        )


def _image_is_readable(value: Any) -> bool:
    from PIL import Image

    if not value:
        return False
    try:
        data = value.get("bytes")
        with Image.open(io.BytesIO(data) if data else value["path"]) as image:
            image.verify()
    except Exception:  # PIL raises many types for a broken file (OSError, SyntaxError, struct.error, ...)
        return False
    return True


def labelled_rows(name: str, dataset: Any, label_column: str) -> tuple[Any, tuple[str, ...]]:
    """``dataset`` without the rows that have no label (``null``), and a note for each change or assumption.

    Only a column of raw values is checked (a ``ClassLabel`` has no missing or mixed values and is a class label by
    declaration; a stream is not read whole). Labels of several types (``"pos"`` and ``1``) are kept, each read as its
    text, and named in a note: ``1`` and ``"1"`` become one class. A number with a fraction (``0.5``) is refused: it is
    no class id but a regression target, whose every distinct value would otherwise become a class (and a label name
    to embed); whole numbers stored as floats (``1.0``) are class ids and kept.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset) or isinstance(dataset.features[label_column], datasets.ClassLabel):
        return dataset, ()
    column = list(dataset[label_column])
    nested = next((v for v in column if isinstance(v, (dict, list))), None)
    if nested is not None:
        raise InvalidDatasetError(
            f"column '{label_column}' of dataset '{name}' holds a {type(nested).__name__} ({str(nested)[:40]}), not "
            "a class name or number; give each row one label, or pass --label-column"
        )
    fraction = next((v for v in column if isinstance(v, float) and math.isfinite(v) and not v.is_integer()), None)
    if fraction is not None:
        distinct = len({v for v in column if v is not None})
        raise InvalidDatasetError(
            f"column '{label_column}' of dataset '{name}' holds numbers with a fraction ({fraction}; {distinct} "
            f"distinct values in {len(column)} rows), which look like a regression target, and hf-spider ranks models "
            "for classification; pass the column of class labels with --label-column (label_column=)"
        )
    notes = []
    kinds = {_LABEL_KINDS.get(type(v), type(v).__name__) for v in column if v is not None}
    if len(kinds) > 1:
        example = next(v for v in column if v is not None and not isinstance(v, str))
        notes.append(
            f"labels of column '{label_column}' of dataset '{name}' mix {' and '.join(sorted(kinds))}; each is read "
            f"as text ({example!r} is the class '{example}'); make them one type if they are not meant as one"
        )
    missing = [i for i, v in enumerate(column) if v is None]
    if missing and len(missing) < len(column):
        notes.append(
            f"{len(missing)} of the {len(column)} rows of dataset '{name}' have no label (null) and were left out "
            f"(first: row {missing[0] + 1}); label them or delete them"
        )
        absent = set(missing)
        dataset = dataset.select([i for i in range(len(column)) if i not in absent])
    return dataset, tuple(notes)


def id_like_labels_note(
    name: str, label_column: str, class_counts: tuple[int, ...] | None, num_rows: int | None
) -> str | None:
    """A note when most rows of the split are the only row of their class (:data:`ID_LIKE_MIN_CLASSES`,
    :data:`ID_LIKE_SINGLE_ROW_SHARE`), ``None`` otherwise or when the counts are unknown (a stream).

    Such a column is more often an id or free text taken for the labels than a task: every value becomes a class
    whose name is embedded and ranked on. It is noted, not refused: extreme classification (thousands of classes with
    a long tail) exists.
    """
    if class_counts is None or num_rows is None or len(class_counts) <= ID_LIKE_MIN_CLASSES:
        return None
    alone = sum(1 for count in class_counts if count == 1)
    if alone < ID_LIKE_SINGLE_ROW_SHARE * num_rows:
        return None
    return (
        f"column '{label_column}' of dataset '{name}' has {len(class_counts)} classes for {num_rows} rows, and {alone} "
        "rows are the only one of their class: it reads like an id or free text, and each value is read as a class "
        "name; if it is not the class label, pass the right column with --label-column (label_column=)"
    )


#: More classes than this before :func:`id_like_labels_note` looks at the split: a small task with a few single-row
#: classes (a dozen labelled examples) is a few-shot task, not a mistaken column.
ID_LIKE_MIN_CLASSES = 50
#: The share of rows alone in their class from which :func:`id_like_labels_note` speaks. An id or free-text column
#: has nearly every row alone (share close to 1); a real long-tailed label set keeps most rows in classes of several.
ID_LIKE_SINGLE_ROW_SHARE = 0.5

#: How a label's Python type reads in a note about mixed label types.
_LABEL_KINDS = {str: "text", int: "numbers", float: "numbers", bool: "true/false values"}
