"""Stratified, seeded sampling of a few examples per class: the samples behind the class prototypes.

Model Spider summarises a task by a few encoded samples per class, so reading more than those rows is waste. An
in-memory (Arrow, memory-mapped) ``Dataset`` is sampled by index: only the label column is read in full and only the
chosen rows are decoded. An ``IterableDataset`` is read through a seeded shuffle buffer and stops as soon as every
class is full, so memory is bounded by the buffer and the sample, never by the dataset. A sample that cannot be used
(a corrupt image, an empty text) is skipped, counted and replaced by the next one of its class.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidDatasetError

if TYPE_CHECKING:
    from .sources import TaskSource

logger = logging.getLogger(__name__)

#: Samples per class. Model Spider builds prototypes from a few samples per class; 10 keeps CPU encoding cheap.
DEFAULT_PER_CLASS = 10
#: Rows held by the shuffle buffer of a streamed dataset (``datasets``' own default).
SHUFFLE_BUFFER = 1000


@dataclass(frozen=True)
class Sample:
    """Prepared samples, grouped by class in label order.

    Args:
        inputs: ``[N]`` samples ready for the encoder (PIL images or non-empty strings).
        labels: ``[N]`` class ids, non-decreasing.
        skipped: samples drawn but unusable (corrupt image, empty text), replaced by others of their class.
        rows_read: rows drawn (in memory) or taken from the shuffled stream (whose buffer holds up to
            ``shuffle_buffer`` more); never the whole dataset unless a class is that rare.
    """

    inputs: list[Any]
    labels: np.ndarray
    skipped: int
    rows_read: int


def stratified_sample(
    dataset: Any,
    *,
    label_column: str,
    input_column: str,
    label_names: Sequence[str],
    label_index: Callable[[Any], int | None],
    prepare: Callable[[Any], Any | None],
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> Sample:
    """Draw up to ``per_class`` usable samples of each class (all of a class's rows if it has fewer).

    Args:
        dataset: a ``datasets.Dataset`` or ``IterableDataset`` whose ``input_column`` is not decoded (raw values).
        label_names: class names ordered by id, for error messages.
        label_index: maps a raw label value to its class id, ``None`` for a row to ignore (missing label).
        prepare: turns a raw input into an encoder input, ``None`` when it is unusable (skipped and counted).
        per_class: samples per class; ``seed`` makes the draw reproducible.

    Raises:
        InvalidDatasetError: ``per_class`` < 1, or a class has no usable sample (the message names it).
    """
    import datasets

    if per_class < 1:
        raise InvalidDatasetError(f"per_class={per_class} draws no sample; pass per_class >= 1 (--per-class)")
    num_classes = len(label_names)
    if isinstance(dataset, datasets.IterableDataset):
        chosen, skipped, rows = _sample_stream(
            dataset.shuffle(seed=seed, buffer_size=shuffle_buffer),
            label_column,
            input_column,
            num_classes,
            label_index,
            prepare,
            per_class,
        )
    else:
        chosen, skipped, rows = _sample_indexed(
            dataset, label_column, input_column, num_classes, label_index, prepare, per_class, seed
        )
    empty = [label_names[c] for c in range(num_classes) if not chosen[c]]
    if empty:
        raise InvalidDatasetError(
            f"class(es) {', '.join(repr(n) for n in empty[:5])} have no usable sample ({skipped} skipped as corrupt or "
            "empty); add samples for them or drop them from the label names (datasets.ClassLabel(names=...))"
        )
    if skipped:
        logger.warning("skipped %d unusable sample(s) (corrupt image or empty text) while sampling", skipped)
    inputs = [x for c in range(num_classes) for x in chosen[c]]
    labels = np.repeat(np.arange(num_classes), [len(chosen[c]) for c in range(num_classes)])
    return Sample(inputs=inputs, labels=labels, skipped=skipped, rows_read=rows)


def _sample_indexed(
    dataset: Any,
    label_column: str,
    input_column: str,
    num_classes: int,
    label_index: Callable[[Any], int | None],
    prepare: Callable[[Any], Any | None],
    per_class: int,
    seed: int,
) -> tuple[list[list[Any]], int, int]:
    """Per class, a seeded permutation of its row indices, read in chunks until ``per_class`` are usable."""
    codes = np.array([_or_minus_one(label_index(v)) for v in dataset[label_column]], dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen: list[list[Any]] = []
    skipped = rows = 0
    for c in range(num_classes):
        order = rng.permutation(np.flatnonzero(codes == c))
        kept: list[Any] = []
        start = 0
        while len(kept) < per_class and start < len(order):
            stop = start + per_class - len(kept)
            for raw in dataset.select(order[start:stop])[input_column]:
                value = prepare(raw)
                skipped += value is None
                if value is not None:
                    kept.append(value)
            rows += min(stop, len(order)) - start
            start = stop
        chosen.append(kept)
    return chosen, skipped, rows


def _sample_stream(
    stream: Any,
    label_column: str,
    input_column: str,
    num_classes: int,
    label_index: Callable[[Any], int | None],
    prepare: Callable[[Any], Any | None],
    per_class: int,
) -> tuple[list[list[Any]], int, int]:
    """The first ``per_class`` usable rows of each class in the shuffled stream; stops when every class is full."""
    chosen: list[list[Any]] = [[] for _ in range(num_classes)]
    missing = num_classes
    skipped = rows = 0
    for row in stream:
        rows += 1
        c = label_index(row[label_column])
        if c is None or len(chosen[c]) >= per_class:
            continue
        value = prepare(row[input_column])
        if value is None:
            skipped += 1
            continue
        chosen[c].append(value)
        if len(chosen[c]) == per_class:
            missing -= 1
            if missing == 0:
                break
    return chosen, skipped, rows


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def sample_task(task: TaskSource, *, per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> Sample:
    """:func:`stratified_sample` of a loaded task: images decoded only for the drawn rows, corrupt ones skipped.

    Shared by the task tokens (class prototypes) and re-ranking (the candidates' probe set), so both draw the same
    samples for the same seed.

    Raises:
        InvalidDatasetError: the task has no samples (no label or input column), or a class has no usable sample.
    """
    import datasets

    description = task.description
    label_column, input_column = description.label_column, description.input_column
    if label_column is None or input_column is None:
        raise InvalidDatasetError(
            f"task '{description.name}' has no samples (no label or input column); pass a dataset with samples"
        )
    raw = task.dataset.select_columns([label_column, input_column])
    if isinstance(raw, datasets.IterableDataset):
        raw = raw.decode(False)
    elif isinstance(raw.features[input_column], datasets.Image):
        raw = raw.cast_column(input_column, datasets.Image(decode=False))
    return stratified_sample(
        raw,
        label_column=label_column,
        input_column=input_column,
        label_names=description.label_names,
        label_index=_label_index(task.dataset.features[label_column], description.label_names),
        prepare=_open_image if description.modality == "image" else _clean_text,
        per_class=per_class,
        seed=seed,
    )


def _label_index(feature: Any, label_names: Sequence[str]) -> Callable[[Any], int | None]:
    """Raw label value -> class id: ClassLabel ids as they are, other values by their string (as sources names them)."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        num_classes = len(label_names)
        return lambda v: int(v) if isinstance(v, (int, np.integer)) and 0 <= v < num_classes else None
    index = {name: i for i, name in enumerate(label_names)}
    return lambda v: None if v is None else index.get(str(v))


def _open_image(raw: Any) -> Any | None:
    """A decoded RGB PIL image from an undecoded ``Image`` value, ``None`` when the file is corrupt or missing."""
    from PIL import Image

    try:
        if isinstance(raw, Image.Image):
            return raw.convert("RGB")
        data = raw.get("bytes")
        with Image.open(io.BytesIO(data) if data else raw["path"]) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, Image.DecompressionBombError):
        return None


def _clean_text(raw: Any) -> str | None:
    return raw.strip() if isinstance(raw, str) and raw.strip() else None
