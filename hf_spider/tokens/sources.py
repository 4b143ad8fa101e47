"""Turn whatever the user points at (a ``datasets`` object, a local path, a Hub dataset id) into a task.

Everything goes through ``datasets``: local folders of images are ``imagefolder``, tables are ``csv`` / ``json`` /
``parquet``, a ``save_to_disk`` folder is ``load_from_disk``, and anything else is tried as a Hub dataset id. The
modality and the label column come from the features (``ClassLabel``, ``Image``, string columns) unless given.

What ``datasets`` would refuse with a traceback or a bare "An error occurred while generating the dataset" is named
here first, with the file, the line and the fix: a device, pipe or process substitution, a file name that is not
UTF-8, a symbolic-link class folder (which the image-folder reader skips), an unterminated CSV quote, an invalid JSON
Lines line. What can be used with care is used and noted (:attr:`TaskSource.notes`): rows without a label are left
out and counted, labels of mixed types (``"pos"`` and ``1``) are named. ``datasets``' Arrow copies of local files go
under ``$HF_SPIDER_CACHE/datasets``, not the shared ``datasets`` cache.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidDatasetError
from ..hub.sanitize import escape_for_display
from .task import Modality, TaskDescription

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
TABLE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category", "fine_label", "coarse_label")
TEXT_COLUMN_NAMES = ("text", "sentence", "content", "review", "document", "tweet", "question", "title")


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
    silently; a split with no readable image is refused.

    Raises:
        InvalidDatasetError: missing path, unknown layout, an empty, header-only or non-UTF-8 table, no label
            column, a single class or an empty split.
    """
    name, loaded = _load(source, config=config, streaming=streaming)
    dataset, split_name = _pick_split(name, loaded, split)
    features = dataset.features
    if features is None:  # an IterableDataset whose first rows were never read
        dataset = dataset._resolve_features()  # type: ignore[union-attr]
        features = dataset.features
    if label_column is None and _is_one_class_image_folder(source, features):
        only = next(p.name for p in Path(source).iterdir() if p.is_dir())
        raise InvalidDatasetError(
            f"image folder '{name}' has a single class ('{only}'); ranking needs at least 2 classes: add a "
            "sub-folder per class"
        )
    label_column = label_column or _detect_label_column(name, features)
    if label_column not in features:
        raise InvalidDatasetError(
            f"dataset '{name}' has no column '{label_column}' (columns: {', '.join(features)}); pass label_column="
        )
    modality, input_column = _detect_input(name, features, label_column, input_column)
    dataset, notes = _labelled_rows(name, dataset, label_column)
    readable, unreadable = _without_unreadable_images(name, dataset)
    label_names, class_counts, num_rows = _label_statistics(name, readable, label_column)
    if unreadable:
        _refuse_emptied_classes(name, dataset, readable, label_column, unreadable)
        dataset = readable
    if num_rows == 0:
        raise InvalidDatasetError(f"split '{split_name}' of dataset '{name}' is empty; pass a split with examples")
    if len(label_names) < 2:
        only = label_names[0] if label_names else "none"
        raise InvalidDatasetError(
            f"dataset '{name}' has a single class ('{only}') in split '{split_name}'; ranking needs at least 2 classes"
        )
    description = TaskDescription(
        name=name,
        modality=modality,
        label_names=tuple(label_names),
        num_examples=_split_sizes(loaded, split_name, num_rows),
        label_column=label_column,
        input_column=input_column,
        source=name if config is None else f"{name}:{config}",
        class_counts=class_counts,
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
            f"could not read the card of Hub dataset '{repo_id}' ({_first_line(exc)}); check the id, the network or "
            "HF_HUB_OFFLINE"
        ) from exc
    card = info.card_data.to_dict() if info.card_data is not None else {}
    return description_from_card(repo_id, card, config=config, label_column=label_column, input_column=input_column)


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
            f"the card of dataset '{name}' has no dataset_info features{which}; load its data instead, or pass config="
        )
    info = infos[0]
    features = datasets.Features._from_yaml_list(info["features"])
    label_column = label_column or _detect_label_column(name, features)
    feature = features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel):
        raise InvalidDatasetError(
            f"column '{label_column}' of dataset '{name}' is not a class label in its card, so the classes are unknown "
            "before download; load its data instead, or pass label_column="
        )
    if feature.num_classes < 2:
        raise InvalidDatasetError(
            f"dataset '{name}' declares {feature.num_classes} class(es); ranking needs at least 2"
        )
    modality, _ = _detect_input(name, features, label_column, input_column)
    sizes = {s["name"]: int(s["num_examples"]) for s in info.get("splits") or [] if s.get("num_examples")}
    return TaskDescription(
        name=name if config is None else f"{name}:{config}",
        modality=modality,
        label_names=tuple(feature.names),
        num_examples=sizes,
    )


def _load(source: Any, *, config: str | None, streaming: bool) -> tuple[str, Any]:
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        return _dataset_name(source), source
    if isinstance(source, (datasets.IterableDataset, datasets.IterableDatasetDict)):
        return _dataset_name(source), source
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidDatasetError(
            f"cannot read a task from a {type(source).__name__}; "
            "pass a datasets object, a local path or a Hub dataset id"
        )
    path = Path(source)
    if path.exists():
        return path.name or str(path), _load_local(path)
    if os.sep in str(source) and not _looks_like_repo_id(str(source)):
        raise InvalidDatasetError(
            f"dataset path '{source}' does not exist; pass an existing folder or file, or a Hub dataset id"
        )
    try:
        return str(source), datasets.load_dataset(str(source), config, streaming=streaming, cache_dir=_datasets_cache())
    except FileNotFoundError as exc:
        raise InvalidDatasetError(
            f"'{source}' is neither a local path nor a dataset on the Hub ({_first_line(exc)}); check the id or path"
        ) from exc
    except Exception as exc:  # network and HTTP errors come from several libraries (httpx2, aiohttp, fsspec)
        raise InvalidDatasetError(
            f"could not load Hub dataset '{source}' ({_first_line(exc)}); check the id, the network or HF_HUB_OFFLINE"
        ) from exc


def _load_local(path: Path) -> Any:
    import datasets

    if not path.is_file() and not path.is_dir():
        raise InvalidDatasetError(
            f"dataset '{path}' is neither a regular file nor a folder (a device, a pipe or a process substitution "
            "such as <(...)); save the data to a file, e.g. data.csv, and pass its path"
        )
    if path.is_file():
        builder = TABLE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise InvalidDatasetError(
                f"unknown dataset file type '{path.suffix}' for '{path}'; use CSV, JSON Lines or Parquet"
            )
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        return _load_tables(builder, [path], **kwargs)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(path))
    suffixes = {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
    if suffixes & IMAGE_SUFFIXES:
        _check_image_folder(path)
        with _quiet_datasets():
            return datasets.load_dataset("imagefolder", data_dir=str(path), cache_dir=_datasets_cache())
    tables = sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_BUILDERS)
    if tables:
        return _load_tables(TABLE_BUILDERS[tables[0].suffix.lower()], tables)
    raise InvalidDatasetError(
        f"unknown dataset layout in '{path}': no images, no CSV/JSON/Parquet files and no save_to_disk files; "
        "use an image folder (one sub-folder per class), a table file or a save_to_disk folder"
    )


def _load_tables(builder: str, paths: list[Path], **kwargs: Any) -> Any:
    """``datasets.load_dataset(builder, data_files=paths)``, after checking what its errors would not name."""
    import datasets

    for path in paths:
        _check_table_file(path, builder)
    try:
        with _quiet_datasets():
            return datasets.load_dataset(
                builder, data_files=[str(p) for p in paths], cache_dir=_datasets_cache(), **kwargs
            )
    except Exception as exc:  # the builders raise many types for a malformed file
        for path in paths:  # name the file and line when we can find them; datasets' own message rarely does
            problem = _table_problem(path, builder, kwargs.get("delimiter", ","))
            if problem is not None:
                raise InvalidDatasetError(f"could not read '{path}' as {builder}: {problem}") from exc
        where = paths[0] if len(paths) == 1 else paths[0].parent
        raise InvalidDatasetError(f"could not read '{where}' as {builder} ({_root_cause(exc)}); fix the file") from exc


def _datasets_cache() -> str:
    """Where ``datasets`` keeps its Arrow copies of the data hf-spider loads: under ``$HF_SPIDER_CACHE``, so one
    setting says where hf-spider writes (a CSV with a 200 MB line has a 200 MB copy)."""
    from ..constants import CACHE_DIR

    return str(CACHE_DIR / "datasets")


def _table_problem(path: Path, builder: str, delimiter: str) -> str | None:
    """The first line of a CSV or JSON Lines file that its reader cannot parse, with the fix; ``None`` if none is
    found (Parquet, or a problem that is not one line's)."""
    if builder == "csv":
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            start = 1  # the line where the record being read starts
            try:
                for _ in reader:
                    start = reader.line_num + 1
            except csv.Error as exc:
                if reader.line_num > start or "end of data" in str(exc):
                    return (
                        f"the quoted field that starts on line {start} is never closed (it runs to line "
                        f"{reader.line_num}, the end of the file); close the quote or remove it"
                    )
                return f"line {reader.line_num} is not valid CSV ({exc}); fix that line"
        return None
    if builder == "json":
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    problem = f"line {lineno} is not valid JSON ({getattr(exc, 'msg', exc)})"
                    break
                if not isinstance(row, dict):
                    problem = f"line {lineno} holds a {type(row).__name__}, not an object"
                    break
            else:
                return None
        if path.suffix.lower() == ".json" and _is_one_json_document(path):
            return None  # a JSON document, not JSON Lines: its lines need not parse alone; datasets' message stands
        return f"{problem}; fix or delete that line (JSON Lines: one object per line)"
    return None


def _is_one_json_document(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        return False
    return True


def _check_image_folder(path: Path) -> None:
    """Refuse what the image-folder reader would fail on, or silently skip: file names that are not UTF-8 (it stops
    with a traceback) and symbolic-link folders (it does not follow them, so a linked class would vanish)."""
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            entry = Path(folder) / name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidDatasetError(
                    f"file name '{escape_for_display(str(entry))}' in image folder '{path}' is not UTF-8; rename it, "
                    f"e.g. `convmv -f latin1 -t utf-8 -r --notest '{path}'`"
                ) from None
            if name in dirs and entry.is_symlink():
                raise InvalidDatasetError(
                    f"folder '{entry}' of image folder '{path}' is a symbolic link (to '{os.path.realpath(entry)}'), "
                    f"which the image-folder reader does not follow, so its images would be left out; replace it "
                    f"with a real folder (`cp -rL`) or move the images in"
                )


def _check_table_file(path: Path, builder: str) -> None:
    """Refuse an empty, header-only or non-UTF-8 text table with the fix (``datasets`` says "no data" or less).

    Parquet is binary and checked by its reader. The whole file is decoded, a block at a time: one Latin-1 byte far
    down would otherwise fail half way through loading.
    """
    if builder == "parquet":
        return
    if path.stat().st_size == 0:
        raise InvalidDatasetError(f"'{path}' is empty; give it a header row and one row per example")
    lines_with_text = 0
    with path.open("rb") as f:
        decoder = io.IncrementalNewlineDecoder(None, translate=True)
        utf8 = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        for block in iter(lambda: f.read(1 << 20), b""):
            try:
                text = decoder.decode(utf8.decode(block))
            except UnicodeDecodeError as exc:
                raise InvalidDatasetError(
                    f"'{path}' is not UTF-8 (byte 0x{block[exc.start]:02x} at offset {offset + exc.start}); "
                    f"save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > utf8_{path.name}`"
                ) from exc
            offset += len(block)
            if lines_with_text < 2:
                lines_with_text += sum(1 for line in text.split("\n") if line.strip())
        if utf8.getstate()[0]:  # the file ends inside a multi-byte character
            raise InvalidDatasetError(
                f"'{path}' is not UTF-8 (it ends inside a character, at offset {offset}); save it as UTF-8"
            )
    if builder == "csv" and lines_with_text < 2:
        raise InvalidDatasetError(f"'{path}' has a header but no rows; add one row per example")
    if lines_with_text == 0:
        raise InvalidDatasetError(f"'{path}' holds no records; give it one JSON object per line")


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence ``datasets``' own error logs while it reads local files: a failure becomes one line of ours."""
    quiet = logging.getLogger("datasets")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        quiet.setLevel(level)


def _is_one_class_image_folder(source: Any, features: Any) -> bool:
    """A local image folder with one class sub-folder: ``imagefolder`` then infers no label column at all."""
    import datasets

    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        return False
    if not any(isinstance(f, datasets.Image) for f in features.values()):
        return False
    if any(isinstance(f, datasets.ClassLabel) for f in features.values()):
        return False
    return sum(1 for p in Path(source).iterdir() if p.is_dir() and not p.name.startswith(".")) == 1


def _without_unreadable_images(name: str, dataset: Any) -> tuple[Any, tuple[str, ...]]:
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


def _refuse_emptied_classes(
    name: str, dataset: Any, readable: Any, label_column: str, unreadable: tuple[str, ...]
) -> None:
    """Name the classes whose every image is unreadable, rather than rank as if they had no examples."""

    def counts(split: Any) -> dict[str, int]:
        names, class_counts, _ = _label_statistics(name, split, label_column)
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


def _pick_split(name: str, loaded: Any, split: str | None) -> tuple[Any, str]:
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


def _split_sizes(loaded: Any, split_name: str, num_rows: int | None) -> dict[str, int]:
    """Examples per split (a statistics token): every split of a dict, or the split sizes a stream's info knows."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        return {name: split.num_rows for name, split in loaded.items()}
    if num_rows is not None:
        return {split_name: num_rows}
    first = next(iter(loaded.values())) if isinstance(loaded, datasets.IterableDatasetDict) else loaded
    splits = getattr(first.info, "splits", None) or {}
    return {name: int(s.num_examples) for name, s in splits.items() if s.num_examples}


def _detect_label_column(name: str, features: Any) -> str:
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


def _detect_input(name: str, features: Any, label_column: str, input_column: str | None) -> tuple[Modality, str]:
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
            f"dataset '{name}' mixes image column '{images[0]}' and text column '{texts[0]}'; pass input_column="
        )
    if images:
        return "image", images[0]
    if texts:
        preferred = [t for t in TEXT_COLUMN_NAMES if t in texts]
        return "text", preferred[0] if preferred else texts[0]
    raise InvalidDatasetError(
        f"dataset '{name}' has no image or text column (columns: {', '.join(features)}); pass input_column="
    )


def _label_statistics(
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


def _dataset_name(dataset: Any) -> str:
    info = getattr(dataset, "info", None)
    if info is None and hasattr(dataset, "values"):
        first = next(iter(dataset.values()), None)
        info = getattr(first, "info", None)
    return (
        (getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset") if info else "dataset"
    )


def _looks_like_repo_id(value: str) -> bool:
    return value.count("/") == 1 and not value.startswith((".", "/"))


def _labelled_rows(name: str, dataset: Any, label_column: str) -> tuple[Any, tuple[str, ...]]:
    """``dataset`` without the rows that have no label (``null``), and a note for each change or assumption.

    Only a column of raw values is checked (a ``ClassLabel`` has no missing or mixed values; a stream is not read
    whole). Labels of several types (``"pos"`` and ``1``) are kept, each read as its text, and named in a note:
    ``1`` and ``"1"`` become one class.
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


#: How a label's Python type reads in a note about mixed label types.
_LABEL_KINDS = {str: "text", int: "numbers", float: "numbers", bool: "true/false values"}


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause: ``datasets`` wraps the reader's own message ("EOF inside string
    starting at row 2") in "An error occurred while generating the dataset"."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
