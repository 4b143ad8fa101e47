"""What a loaded dataset holds as a classification task: its split, its label and input columns, its classes.

The modality and the label column come from the features (``ClassLabel``, ``Image``, string columns) unless given;
the same detection serves a loaded split and a dataset card's ``dataset_info``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import InvalidDatasetError
from .task import Modality

LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category", "fine_label", "coarse_label")
TEXT_COLUMN_NAMES = ("text", "sentence", "content", "review", "document", "tweet", "question", "title")


def pick_split(name: str, loaded: Any, split: str | None) -> tuple[Any, str]:
    """``(split, its name)``: the asked split, else ``train`` when present, else the first."""
    import datasets

    if not isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return loaded, split or str(getattr(loaded, "split", None) or "train")
    if split is None:
        split = "train" if "train" in loaded else next(iter(loaded))
    if split not in loaded:
        raise InvalidDatasetError(
            f"dataset '{name}' has no split '{split}' (splits: {', '.join(loaded)}); pass one of those"
        )
    return loaded[split], split


def split_sizes(loaded: Any, split_name: str, num_rows: int | None) -> dict[str, int]:
    """Examples per split (a statistics token): every split of a dict, or the split sizes a stream's info knows."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        return {name: split.num_rows for name, split in loaded.items()}
    if num_rows is not None:
        return {split_name: num_rows}
    first = next(iter(loaded.values())) if isinstance(loaded, datasets.IterableDatasetDict) else loaded
    splits = getattr(first.info, "splits", None) or {}
    return {name: int(s.num_examples) for name, s in splits.items() if s.num_examples}


def detect_label_column(name: str, features: Any) -> str:
    """The first ``ClassLabel`` column, else the first column with a usual label name."""
    import datasets

    class_labels = [c for c, f in features.items() if isinstance(f, datasets.ClassLabel)]
    if class_labels:
        return class_labels[0]
    for candidate in LABEL_COLUMN_NAMES:
        if candidate in features:
            return candidate
    raise InvalidDatasetError(
        f"dataset '{name}' has no label column (columns: {', '.join(features)}); pass label_column= (--label-column)"
    )


def detect_input(name: str, features: Any, label_column: str, input_column: str | None) -> tuple[Modality, str]:
    """``(modality, input column)``: the given column's kind, else the image column or the text column (a usual text
    name first); refused when there are both or neither."""
    import datasets

    def is_text(f: Any) -> bool:
        return isinstance(f, datasets.Value) and f.dtype in ("string", "large_string")

    if input_column is not None:
        if input_column not in features:
            raise InvalidDatasetError(
                f"dataset '{name}' has no column '{input_column}' (columns: {', '.join(features)}); fix input_column="
            )
        feature = features[input_column]
        if isinstance(feature, datasets.Image):
            return "image", input_column
        if is_text(feature):
            return "text", input_column
        raise InvalidDatasetError(f"column '{input_column}' of '{name}' holds neither images nor text; pick another")
    images = [c for c, f in features.items() if isinstance(f, datasets.Image)]
    texts = [c for c, f in features.items() if c != label_column and is_text(f)]
    if images and texts and not any(t in TEXT_COLUMN_NAMES for t in texts):
        texts = []
    if images and texts:
        raise InvalidDatasetError(
            f"dataset '{name}' mixes image column '{images[0]}' and text column '{texts[0]}'; pass input_column= "
            "(--input-column)"
        )
    if images:
        return "image", images[0]
    if texts:
        preferred = [t for t in TEXT_COLUMN_NAMES if t in texts]
        return "text", preferred[0] if preferred else texts[0]
    raise InvalidDatasetError(
        f"dataset '{name}' has no image or text column (columns: {', '.join(features)}); pass input_column= "
        "(--input-column)"
    )


def label_statistics(
    name: str, dataset: Any, label_column: str
) -> tuple[list[str], tuple[int, ...] | None, int | None]:
    """Label names ordered by id, per-class counts and the number of rows (counts only for in-memory datasets)."""
    import datasets

    feature = dataset.features[label_column]
    if isinstance(dataset, datasets.IterableDataset):
        if isinstance(feature, datasets.ClassLabel):
            return list(feature.names), None, None
        raise InvalidDatasetError(
            f"streamed dataset '{name}' has no ClassLabel column '{label_column}', so its classes are unknown "
            "before reading it all; pass streaming=False or cast the column with datasets.ClassLabel"
        )
    column = dataset[label_column]
    if isinstance(feature, datasets.ClassLabel):
        counts = Counter(column)
        names = list(feature.names)
        return names, tuple(counts.get(i, 0) for i in range(len(names))), len(column)
    counts = Counter(str(v) for v in column if v is not None)
    names = sorted(counts)
    return names, tuple(counts[n] for n in names), len(column)
