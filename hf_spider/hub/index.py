"""On-disk model index: a set of :class:`ModelRecord` keyed by repo id, in Parquet or JSON Lines.

Writes are atomic (:func:`~hf_spider.hub.output_paths.atomic_write`: a temporary file in the same folder, then
``os.replace``, never over anything but a regular file) so a crash never leaves a half-written index. The bundled
index (the 349 TransferGraph models) ships inside the package as ``data/bundled_index.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from ..errors import InvalidIndexError
from .output_paths import atomic_write
from .records import ModelRecord

BUNDLED_INDEX = "bundled_index.jsonl"
#: The suffixes an index is written with: Parquet, and JSON Lines (:func:`write_index`).
INDEX_SUFFIXES = (".jsonl", ".parquet")
#: The formats by suffix, in lower case (:func:`index_format`); a ``.json`` name is read as JSON Lines, not written.
_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def bundled_index_path() -> Path:
    """Path of the index shipped with the package (built by ``scripts/build_bundled_data.py``)."""
    return Path(str(resources.files("hf_spider") / "data" / BUNDLED_INDEX))


def load_bundled_index() -> list[ModelRecord]:
    """The embedded default candidate pool: 185 image and 164 text classification models of the Hub."""
    return read_index(bundled_index_path())


def index_format(path: str | os.PathLike[str], *, what: str = "index", writing: bool = False) -> str:
    """``"parquet"`` or ``"jsonl"``: the format the suffix of an index file names, in any case (``X.PARQUET`` is
    Parquet). The one suffix rule of :func:`read_index`, :func:`write_index` and ``crawl --index``: compared
    case-sensitively in one place and not in another, ``OUT.PARQUET`` was written as JSON Lines and refused as such.

    Args:
        path: the index file.
        what: how the message names it (``"--index"``).
        writing: refuse ``.json`` too (read as JSON Lines, but an index is written as ``.jsonl``).

    Raises:
        InvalidIndexError: any other suffix (a ``.csv`` would be read or written as JSON Lines).
    """
    suffix = Path(path).suffix.lower()
    if suffix in INDEX_SUFFIXES or (suffix in _FORMATS and not writing):
        return _FORMATS[suffix]
    raise InvalidIndexError(
        f"{what} '{path}' is neither .jsonl nor .parquet, the two formats an index is kept in; rename it or pass a "
        ".jsonl or .parquet index"
    )


def not_a_file(path: Path) -> str:
    """Why ``path``, which is no regular file, cannot be read as one, for a message: ``/dev/null`` or a pipe is not a
    missing file."""
    if path.is_dir():
        return "is a folder"
    return "is not a regular file (a device or a pipe)" if path.exists() else "does not exist"


def read_index(path: str | os.PathLike[str]) -> list[ModelRecord]:
    """Read an index file (``.parquet``, or JSON Lines as ``.jsonl``/``.json``; any case).

    Raises:
        InvalidIndexError: the file is missing, unreadable, has another suffix, or a row is not a valid record (the
            message names the row).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidIndexError(f"index file '{path}' {not_a_file(path)}; pass the path of a .parquet or .jsonl index")
    if index_format(path) == "parquet":
        rows = _read_parquet_rows(path)
        return [_record_or_raise(path, i, row, ModelRecord.from_row) for i, row in enumerate(rows, start=1)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidIndexError(
            f"index '{path}' is not UTF-8 text (byte {exc.start}); convert it (e.g. iconv -f latin1 -t utf-8) or pass "
            "a .parquet index"
        ) from exc
    records = []
    for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines(): a card may hold U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidIndexError(
                f"index '{path}' line {lineno} is not valid JSON ({exc.msg}); fix or delete that line"
            ) from exc
        except RecursionError:
            raise InvalidIndexError(
                f"index '{path}' line {lineno} nests too deeply to be a model record; fix or delete that line"
            ) from None
        records.append(_record_or_raise(path, lineno, row, ModelRecord.from_dict))
    return records


def write_index(records: Iterable[ModelRecord], path: str | os.PathLike[str]) -> Path:
    """Write records atomically in the format the suffix names (:func:`index_format`). Returns the path.

    Raises:
        InvalidIndexError: the suffix is neither ``.parquet`` nor ``.jsonl`` (any case).
    """
    path = Path(path)
    fmt = index_format(path, writing=True)
    records = list(records)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([r.to_row() for r in records])
        with atomic_write(path, mode="wb") as f:
            pq.write_table(table, f)
    else:
        with atomic_write(path) as f:
            for record in records:
                f.write(json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
    return path


def _read_parquet_rows(path: Path) -> list[dict[str, object]]:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).read().to_pylist()  # not read_table: it imports pyarrow.dataset (0.7 s)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise InvalidIndexError(f"index '{path}' is not a readable Parquet file ({exc}); rebuild it") from exc


def _record_or_raise(path: Path, where: int, row: object, parse: object) -> ModelRecord:
    if not isinstance(row, dict):
        raise InvalidIndexError(f"index '{path}' row {where} is not an object; each row must be one model record")
    try:
        return parse(row)  # type: ignore[operator,no-any-return]
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidIndexError(
            f"index '{path}' row {where} is not a valid model record ({exc}); fix that row"
        ) from exc
    except RecursionError:  # a Parquet cell of JSON text nested thousands deep
        raise InvalidIndexError(
            f"index '{path}' row {where} nests too deeply to be a model record; fix that row"
        ) from None
