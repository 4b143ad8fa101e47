"""Read whatever the user points at (a ``datasets`` object, a local path, a Hub dataset id) into a ``datasets`` object.

Everything goes through ``datasets``: local folders of images are ``imagefolder``, tables are ``csv`` / ``json`` /
``parquet``, a ``save_to_disk`` folder is ``load_from_disk``, and anything else is tried as a Hub dataset id.

What ``datasets`` would refuse with a traceback or a bare "An error occurred while generating the dataset" is named
here first, with the file, the line and the fix: a device, pipe or process substitution, a file name that is not
UTF-8, a symbolic-link class folder (which the image-folder reader skips), an unterminated CSV quote, an invalid JSON
Lines line. ``datasets``' Arrow copies of local files go under ``$HF_SPIDER_CACHE/datasets``, not the shared
``datasets`` cache.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidDatasetError
from ..hub.sanitize import escape_for_display

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
TABLE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def load_source(source: Any, *, config: str | None, streaming: bool) -> tuple[str, Any]:
    """``(name, datasets object)`` for ``source``; a ``DatasetDict`` keeps its splits (the caller picks one).
    ``config`` names a configuration of a Hub dataset; given with anything else, it would be ignored, so it is refused.
    """
    import datasets

    if isinstance(
        source, (datasets.Dataset, datasets.DatasetDict, datasets.IterableDataset, datasets.IterableDatasetDict)
    ):
        _refuse_config(config, "a datasets object")
        return _dataset_name(source), source
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidDatasetError(
            f"cannot read a task from a {type(source).__name__}; "
            "pass a datasets object, a local path or a Hub dataset id"
        )
    if not str(source).strip():  # Path("") is the current folder: it would rank whatever tables lie there
        raise InvalidDatasetError("the dataset path is empty; pass a folder, a file or a Hub dataset id")
    path = Path(source)
    if path.exists():
        _refuse_config(config, f"'{path}', a local file or folder,")
        return path.name or str(path), _load_local(path)
    named_file = "/" not in str(source) and path.suffix.lower() in TABLE_BUILDERS  # no Hub id is a bare "x.csv"
    if named_file or (os.sep in str(source) and not _looks_like_repo_id(str(source))):
        raise InvalidDatasetError(
            f"dataset path '{source}' does not exist; pass an existing folder or file, or a Hub dataset id"
        )
    try:
        return str(source), datasets.load_dataset(str(source), config, streaming=streaming, cache_dir=_datasets_cache())
    except FileNotFoundError as exc:
        raise InvalidDatasetError(
            f"'{source}' is neither a local path nor a dataset on the Hub ({first_line(exc)}); check the id or path"
        ) from exc
    except Exception as exc:  # network and HTTP errors come from several libraries (httpx2, aiohttp, fsspec)
        raise InvalidDatasetError(
            f"could not load Hub dataset '{source}' ({first_line(exc)}); check the id, the network or HF_HUB_OFFLINE"
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


def _dataset_name(dataset: Any) -> str:
    info = getattr(dataset, "info", None)
    if info is None and hasattr(dataset, "values"):
        first = next(iter(dataset.values()), None)
        info = getattr(first, "info", None)
    return (
        (getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset") if info else "dataset"
    )


def _refuse_config(config: str | None, what: str) -> None:
    """A ``config`` given with data that is no Hub dataset (``what``) would be ignored: only a Hub dataset has
    configurations to choose from."""
    if config is not None:
        raise InvalidDatasetError(
            f"config '{config}' (--config) names a configuration of a Hub dataset, and {what} has none; leave it out"
        )


def _looks_like_repo_id(value: str) -> bool:
    return value.count("/") == 1 and not value.startswith((".", "/"))


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause: ``datasets`` wraps the reader's own message ("EOF inside string
    starting at row 2") in "An error occurred while generating the dataset"."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return first_line(exc)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, for a one-line reason."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
