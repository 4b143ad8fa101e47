"""Check a scorer's files before anything they describe is allocated, decompressed or ranked.

A scorer folder or Hub scorer repo (``rank --scorer``, the pipeline's ``model=``) is untrusted input, like a
candidate's repo in stage two (:mod:`hf_spider.rerank.checks`). Its files are checked in the order they are read:

* ``config.json`` is read only if it is a regular file of at most :data:`MAX_CONFIG_BYTES` (not a FIFO, not
  ``/dev/zero``); it must be a JSON object in which every key a :class:`~hf_spider.scorer.model.TransferScorer` is
  built from has its type and a sane value, and the tensors it lays out (:func:`expected_tensors`) may take at most
  :data:`MAX_TENSOR_BYTES` (:func:`read_config`): a hidden size of 20,000 or ``members: 10**7`` is refused before
  anything is allocated or the weights downloaded;
* ``model.safetensors`` must hold exactly those tensors, with their shapes and dtypes, by its header
  (:func:`check_weights_header`) before a value is read; every value read must then be finite and in range
  (:func:`check_values`): an infinite weight ranks nothing, a NaN confidence is written as ``NaN``, which is no JSON,
  an out-of-range forest index crashes the forest walk and a cycle among its nodes never ends it;
* ``task_aware.npz`` is read as the zip it is (:func:`read_npz`): its members' names and declared sizes from the zip
  directory, each array's dtype and shape from its ``.npy`` header, all before an array is decompressed (a 3 MB file
  declaring 3 GB of zeros is refused unread), and no ``np.load``, so no pickle either.

From a Hub repo, each file's size is asked of the Hub before it is downloaded (:func:`check_hub_sizes`), and a file over
its cap (:func:`file_cap`) is refused undownloaded: ``hf_hub_download`` takes whatever size the repo holds, and the
checks above run on a file once it is on disk.

Failures are one line each: :func:`loading` names the scorer in front of what is wrong and its fix
(:class:`~hf_spider.errors.ScorerConfigError`); :func:`read_npz` raises ``ValueError``, which the task-aware loader
words. Nothing here imports torch: the numpy scorer that ``hf-spider rank`` runs (:mod:`hf_spider.scorer.inference`)
checks the same files in the same way as the torch one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import reprlib
import stat
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from ..errors import ScorerConfigError
from ..hub.index import not_a_file
from ..hub.sizes import download_sizes
from ..outputs.shortlist import EVIDENCE_KINDS
from ..tokens.ptm import HEAD_DIM, PTM_SCHEMA_VERSION, TEXT_PARTS, token_dim

#: ``model_type`` written into ``config.json``: ``transformers.AutoConfig`` needs one to open the folder, and
#: :func:`hf_spider.pipeline.register` registers it, so ``transformers.pipeline(model=<scorer path>)`` works.
SCORER_MODEL_TYPE = "hf_spider_scorer"

#: Largest ``config.json`` read, in bytes. The shipped one is 19 KB, nearly all of it the ids of its 344 training
#: models and the model card's summary; 16 MiB holds the ids of some 300,000 models (parsed in 0.04 s), where an
#: unbounded read of ``/dev/zero`` runs until memory is gone.
MAX_CONFIG_BYTES = 16 * 2**20

#: Most bytes the tensors of one scorer file may take once loaded: the weights ``config.json`` describes, and the
#: arrays ``task_aware.npz`` declares uncompressed. The shipped files hold 1.4 MB and 0.4 MB; 256 MiB is about 190
#: times the weights and holds the collaborative table of 10,000 models by 5,000 training tasks (200 MB of float32),
#: while a config asking for a hidden width of 20,000 describes 32 GiB and a 3 MB zip bomb declared 3.2 GB.
MAX_TENSOR_BYTES = 256 * 2**20

#: Bytes a ``model.safetensors`` may hold beside its tensors: the 8-byte length and the JSON header that names each
#: tensor's dtype, shape and offsets. An entry takes about 100 bytes and a scorer at most ``21 * MAX_MEMBERS + 13`` =
#: 1,357 tensors: the header of the largest scorer the caps allow, with 12-digit offsets, is 143 KB. 1 MiB is seven
#: times that, where the format itself lets a header take 100 MB.
SAFETENSORS_HEADER_BYTES = 2**20

#: Bytes an ``.npz`` may hold beside the arrays it declares: ``np.savez`` stores each ``.npy`` in a zip entry with a
#: local header, a zip64 field, a data descriptor and a directory entry (about 200 bytes each for the 7 arrays of a
#: task-aware model) and ends with an end record. A deflated entry of data that does not compress grows by 5 bytes a
#: 64 KiB block, 20 KiB on :data:`MAX_TENSOR_BYTES`; 64 KiB covers either.
NPZ_ZIP_BYTES = 2**16

#: Most ensemble members a scorer may average. The shipped scorer and ``train-scorer``'s default have 3. The byte cap
#: alone does not bound how many there are (a member of width 1 is a few hundred bytes), and each is 21 tensors laid
#: out before anything is checked: ``members: 10**7`` ran for minutes into gigabytes.
MAX_MEMBERS = 64

#: Width of the read-out's input: ``len(hf_spider.scorer.pair.PAIR_FEATURES)``, spelt out because that module imports
#: torch (a test compares the two through :func:`expected_tensors`).
PAIR_WIDTH = 9

#: Columns the cold-start forest reads: the token head and ``hf_spider.scorer.inputs.COLD_START_EXTRA`` (two).
FOREST_INPUTS = HEAD_DIM + 2

#: The ``config.json`` keys that lay out a scorer's tensors, each with the smallest value it may take. None may exceed
#: the float32 elements of :data:`MAX_TENSOR_BYTES`: a width that large is over the cap in any one tensor.
_SIZES = {
    "in_dim": 1,
    "text_dim": 1,
    "proto_dim": 1,
    "stats_dim": 1,
    "hidden": 1,
    "pooled": 1,
    "members": 1,
    "text_rank": 0,
    "latent_rank": 0,
    "forest_trees": 0,
    "forest_nodes": 1,
}
_MAX_SIZE = MAX_TENSOR_BYTES // 4


def _strings_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


#: The other keys a scorer is built from: what each must be, and how a message says so.
_DESCRIPTIONS: dict[str, tuple[Any, str]] = {
    "model_ids": (_strings_or_null, "a list of strings or null"),
    "train_tasks": (_strings_or_null, "a list of strings or null"),
    "estimators": (_strings_or_null, "a list of strings or null"),
    "text_encoder": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "sample_encoders": (
        lambda v: v is None or (isinstance(v, dict) and all(isinstance(e, str) for e in v.values())),
        "an object of strings or null",
    ),
    "summary": (lambda v: isinstance(v, str), "a string"),
}

#: Every ``config.json`` key a :class:`~hf_spider.scorer.model.TransferScorer` takes (its ``__init__`` arguments).
CONFIG_KEYS = (*_SIZES, "feature_schema_version", *_DESCRIPTIONS)

_RETRAIN = "retrain it with `hf-spider train-scorer` or use the hf-spider version that saved it"
_PUSHED = "pass the repo `hf-spider train-scorer --push-to-hub` wrote"
_SAVE = "fix config.json, or save the scorer again with save_pretrained or `hf-spider train-scorer`"


class TensorSpec(NamedTuple):
    """A tensor's shape and safetensors dtype name (``F32``, ``I64``)."""

    shape: tuple[int, ...]
    dtype: str


@contextlib.contextmanager
def loading(source: str) -> Iterator[None]:
    """Name the scorer being loaded (its folder or Hub repo) in front of any check that fails while it loads."""
    try:
        yield
    except ScorerConfigError as exc:
        raise ScorerConfigError(f"cannot load a scorer from '{source}': {exc}") from exc


def check_local_source(source: str) -> None:
    """Refuse a ``source`` that is a local path but no scorer folder, in words about the folder (the Hub mixin would
    warn, then blame a version mismatch or the repo-id syntax).

    Raises:
        ScorerConfigError: a folder without ``config.json``, or a path (``./x``, ``/x``, ``a/b/c``) that does not exist.
    """
    fix = "pass the folder `hf-spider train-scorer` wrote or the Hub repo it was pushed to"
    folder = Path(source)
    if folder.is_dir() and not os.path.lexists(folder / "config.json"):
        raise ScorerConfigError(f"'{source}' holds no config.json, so it is not a scorer folder; {fix}")
    if not folder.exists() and (source.startswith((".", "/", "~")) or source.count("/") > 1):
        raise ScorerConfigError(f"scorer folder '{source}' does not exist; {fix}")


def check_token_layout(feature_schema_version: int, in_dim: int, text_dim: int) -> None:
    """Refuse a scorer whose PTM tokens this hf-spider does not build (another schema, another width).

    Raises:
        ScorerConfigError: naming the two schemas or widths and the fix.
    """
    if feature_schema_version != PTM_SCHEMA_VERSION:
        raise ScorerConfigError(
            f"this scorer reads PTM tokens of schema {feature_schema_version} but this hf-spider builds schema "
            f"{PTM_SCHEMA_VERSION}; {_RETRAIN}"
        )
    if in_dim != token_dim(text_dim):
        raise ScorerConfigError(
            f"in_dim={in_dim} does not match text_dim={text_dim} (expected {token_dim(text_dim)}); "
            "build the config from hf_spider.tokens.ptm.token_dim(text_dim)"
        )


def open_regular(path: Path, cap: int) -> IO[bytes]:
    """``path`` opened for reading if it is a regular file (a symbolic link to one counts) of at most ``cap`` bytes.

    Opened without blocking and checked on the open file, so a FIFO neither hangs the read nor is swapped in after the
    check; a device (``/dev/zero``) is never read.

    Raises:
        ValueError: a predicate on the file for a message (``"is a folder"``, ``"is 5 bytes, over ..."``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ValueError(not_a_file(path)) from None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror})") from exc
    f = os.fdopen(fd, "rb")
    info = os.fstat(f.fileno())
    if stat.S_ISREG(info.st_mode) and info.st_size <= cap:
        return f
    f.close()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(not_a_file(path))
    raise ValueError(_too_big(info.st_size, cap))


def file_cap(filename: str) -> int:
    """Most bytes a scorer's file may take on disk, by the suffix of ``filename``: ``.json`` (``config.json``)
    :data:`MAX_CONFIG_BYTES`; ``.safetensors`` the tensors' :data:`MAX_TENSOR_BYTES` and the header's
    :data:`SAFETENSORS_HEADER_BYTES`; ``.npz`` the arrays' :data:`MAX_TENSOR_BYTES` (declared uncompressed) and the
    zip's :data:`NPZ_ZIP_BYTES`. The one bound of a file in a folder (:func:`open_regular`) and of a file on the Hub
    (:func:`check_hub_sizes`), read when called, so a test can lower a cap.

    Raises:
        KeyError: another suffix (a scorer has no other file).
    """
    caps = {
        "json": MAX_CONFIG_BYTES,
        "safetensors": MAX_TENSOR_BYTES + SAFETENSORS_HEADER_BYTES,
        "npz": MAX_TENSOR_BYTES + NPZ_ZIP_BYTES,
    }
    return caps[filename.rpartition(".")[2]]


def _too_big(size: int, cap: int) -> str:
    return f"is {size:,} bytes, over the {cap:,} a scorer's file may have"


def parse_json_object(data: bytes | str) -> dict[str, Any]:
    """``data`` parsed as a JSON object.

    Raises:
        ValueError: a predicate for a message: not UTF-8, not JSON, nested past the parser's depth, or no object.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("nests too deeply to be a scorer's JSON") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of more than 4,300 digits
        raise ValueError(f"is not JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(value, dict):
        raise ValueError(f"holds a JSON {_JSON_TYPES.get(type(value), 'value')}, not an object")
    return value


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_config(path: Path) -> dict[str, Any]:
    """A scorer's ``config.json``: read within :data:`MAX_CONFIG_BYTES`, every key it is built from checked, and the
    tensors it lays out within :data:`MAX_TENSOR_BYTES`; keys of a newer hf-spider are kept and ignored, as the Hub
    mixin ignores them.

    Raises:
        ScorerConfigError: naming the file, what is wrong and the fix (wrap in :func:`loading` to name the scorer).
    """
    try:
        with open_regular(path, file_cap("config.json")) as f:
            config = parse_json_object(f.read())
    except ValueError as exc:
        raise ScorerConfigError(f"its config.json {exc}; pass a scorer `hf-spider train-scorer` wrote") from exc
    model_type = config.get("model_type", SCORER_MODEL_TYPE)
    if model_type != SCORER_MODEL_TYPE:
        raise ScorerConfigError(
            f"its config.json is the config of a {_show(model_type)} model, not of a hf-spider scorer (model_type "
            f"'{SCORER_MODEL_TYPE}'); pass a scorer `hf-spider train-scorer` wrote"
        )
    for key, minimum in {**_SIZES, "feature_schema_version": 0}.items():
        if key not in config:
            raise ScorerConfigError(f"its config.json has no '{key}'; {_SAVE}")
        value = config[key]
        if type(value) is not int or not minimum <= value <= _MAX_SIZE:
            raise ScorerConfigError(
                f"its config.json has '{key}': {_show(value)}, not a whole number from {minimum} to {_MAX_SIZE:,}; "
                f"{_SAVE}"
            )
    for key, (valid, what) in _DESCRIPTIONS.items():
        if key in config and not valid(config[key]):
            raise ScorerConfigError(f"its config.json has '{key}': {_show(config[key])}, not {what}; {_SAVE}")
    check_token_layout(config["feature_schema_version"], config["in_dim"], config["text_dim"])
    if config["members"] > MAX_MEMBERS:
        raise ScorerConfigError(
            f"its config.json asks for {config['members']:,} members, over the {MAX_MEMBERS} a scorer may average; "
            f"{_RETRAIN}"
        )
    tensors = expected_tensors(config)
    total = sum(_nbytes(spec) for spec in tensors.values())
    if total > MAX_TENSOR_BYTES:
        name, largest = max(tensors.items(), key=lambda item: _nbytes(item[1]))
        raise ScorerConfigError(
            f"its config.json describes {total / 2**20:,.0f} MiB of weights (the largest, '{name}', is "
            f"{list(largest.shape)}), over the {MAX_TENSOR_BYTES // 2**20} MiB a scorer may hold; {_RETRAIN}"
        )
    return config


def expected_tensors(config: Mapping[str, Any]) -> dict[str, TensorSpec]:
    """The tensors (parameters and buffers) of the :class:`~hf_spider.scorer.model.TransferScorer` that ``config``
    describes, by name, laid out without torch (a test compares them with the network's ``state_dict``).

    ``config`` holds every key of :data:`_SIZES` (:func:`read_config` checks so).
    """
    h, text_dim, proto_dim = config["hidden"], config["text_dim"], config["proto_dim"]
    member = {
        "ptm.0.weight": (h, HEAD_DIM + len(TEXT_PARTS) * config["text_rank"]),
        "ptm.0.bias": (h,),
        "ptm.3.weight": (h, h),
        "ptm.3.bias": (h,),
        "label_proj.weight": (h, text_dim),
        "label_proj.bias": (h,),
        "proto_proj.weight": (h, proto_dim),
        "proto_proj.bias": (h,),
        "stats_proj.weight": (h, config["stats_dim"]),
        "stats_proj.bias": (h,),
        "kind": (4, h),  # token types: label, prototype, statistics, null
        "queries": (config["pooled"], h),
        "q.weight": (h, h),
        "k.weight": (h, h),
        "v.weight": (h, h),
        "head.0.weight": (h, 3 * h + PAIR_WIDTH),
        "head.0.bias": (h,),
        "out.weight": (1, h),
        "out.bias": (1,),
        "skip.weight": (1, PAIR_WIDTH),
        "skip.bias": (1,),
    }
    models, tasks = len(config.get("model_ids") or ()), len(config.get("train_tasks") or ())
    latent = config["latent_rank"] + 1
    forest = (config["forest_trees"], config["forest_nodes"])
    floats = {
        "text_basis": (len(TEXT_PARTS), text_dim, config["text_rank"]),
        "collab": (models, tasks),
        "task_embeddings": (tasks, text_dim),
        "task_prototypes": (tasks, proto_dim),
        "latent": (models, latent),
        "task_latent": (tasks, latent),
        "calibration": (2,),
        "evidence_confidence": (len(EVIDENCE_KINDS),),
        "forest_threshold": forest,
        "forest_value": forest,
    }
    tensors = {
        f"members.{m}.{name}": TensorSpec(shape, "F32")
        for m in range(config["members"])
        for name, shape in member.items()
    }
    tensors.update({name: TensorSpec(shape, "F32") for name, shape in floats.items()})
    tensors.update({name: TensorSpec(forest, "I64") for name in ("forest_feature", "forest_left", "forest_right")})
    return tensors


def _nbytes(spec: TensorSpec) -> int:
    return math.prod(spec.shape) * (8 if spec.dtype == "I64" else 4)


def check_weights_header(path: Path, expected: Mapping[str, TensorSpec]) -> None:
    """Refuse a ``model.safetensors`` that is no regular file, or whose header does not name exactly the ``expected``
    tensors with their shapes and dtypes; only the header is read (a safetensors file cannot hold less data than its
    header declares, so nothing bigger than ``expected`` is loaded after this).

    Raises:
        ScorerConfigError: naming the first tensor that differs and the fix.
    """
    from safetensors import SafetensorError, safe_open

    try:
        open_regular(path, file_cap("model.safetensors")).close()
        with safe_open(str(path), framework="np") as f:
            held = {k: TensorSpec(tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
    except (ValueError, SafetensorError) as exc:
        raise ScorerConfigError(f"its model.safetensors {_safetensors_problem(exc)}; {_RETRAIN}") from exc
    missing = sorted(set(expected) - set(held))
    extra = sorted(set(held) - set(expected))
    if missing or extra:
        parts = [f"lacks {len(missing)} tensor(s) (first '{missing[0]}')"] if missing else []
        parts += [f"holds {len(extra)} this TransferScorer does not have (first '{extra[0]}')"] if extra else []
        raise ScorerConfigError(
            f"its model.safetensors does not match its config.json: it {' and '.join(parts)}; {_RETRAIN}"
        )
    for name, spec in expected.items():
        if held[name] != spec:
            raise ScorerConfigError(
                f"its model.safetensors does not match its config.json: tensor '{name}' is {list(held[name].shape)} "
                f"{held[name].dtype} there but config.json makes it {list(spec.shape)} {spec.dtype}; {_RETRAIN}"
            )


def _safetensors_problem(exc: Exception) -> str:
    if isinstance(exc, ValueError):  # from open_regular: already a predicate
        return str(exc)
    return f"is no safetensors file ({' '.join(str(exc).split())})"


def read_weights(path: Path, expected: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    """The tensors of a ``model.safetensors`` as numpy arrays, after :func:`check_weights_header` and before
    :func:`check_values`.

    Raises:
        ScorerConfigError: the file is not the one ``expected`` describes, or holds values out of range.
    """
    from safetensors import safe_open

    check_weights_header(path, expected)
    with safe_open(str(path), framework="np") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    check_values(weights)
    return weights


def check_values(weights: Mapping[str, np.ndarray]) -> None:
    """Refuse weights that would rank on nothing, crash or hang: any value that is not a finite number (``collab``
    may hold NaN: it means "no record"), percentiles and confidences outside [0, 1], a calibration that reverses
    the ranking, and a forest whose indices leave its arrays or whose nodes do not lead down to a leaf.

    Raises:
        ScorerConfigError: naming the tensor, what it holds and the fix.
    """
    for name, array in weights.items():
        if array.dtype.kind != "f":
            continue
        bad = np.isinf(array) if name == "collab" else ~np.isfinite(array)
        if bad.any():
            raise ScorerConfigError(
                f"its model.safetensors holds {int(bad.sum()):,} value(s) in '{name}' that are not finite numbers "
                f"(first {array[bad].flat[0]}); {_RETRAIN}"
            )
    for name in ("collab", "evidence_confidence"):
        array = weights[name]
        outside = (array < 0) | (array > 1)  # NaN compares False: "no record" passes
        if outside.any():
            raise ScorerConfigError(
                f"its model.safetensors holds {array[outside].flat[0]} in '{name}', which holds values in [0, 1]; "
                f"{_RETRAIN}"
            )
    if not weights["calibration"][0] > 0:
        raise ScorerConfigError(
            f"its model.safetensors has a calibration slope of {weights['calibration'][0]}, which would reverse or "
            f"flatten every ranking (training keeps it above 0); {_RETRAIN}"
        )
    _check_forest(weights["forest_feature"], weights["forest_left"], weights["forest_right"])


def _check_forest(feature: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """The forest walk (:func:`hf_spider.scorer.forest.predict_forest`) reads feature ``f`` of a node's input and
    moves to a child until it reaches a leaf (feature -1): features must be columns of its input, children nodes of
    the tree, and a node's children come after it (as scikit-learn numbers them), so every walk ends."""
    nodes = feature.shape[1]
    index = np.arange(nodes)
    unknown = feature[(feature < -1) | (feature >= FOREST_INPUTS)]
    problem = None
    if unknown.size:
        problem = f"a node reads feature {int(unknown[0])}"
    elif ((left < 0) | (left >= nodes) | (right < 0) | (right >= nodes)).any():
        problem = "a node's child is outside its tree"
    elif ((feature >= 0) & ((left <= index) | (right <= index))).any():
        problem = "a node's child comes before it, so a walk could loop forever"
    if problem:
        raise ScorerConfigError(
            f"its model.safetensors holds a forest that cannot be walked ({problem}; the input has {FOREST_INPUTS} "
            f"features); {_RETRAIN}"
        )


def read_npz(path: Path, layout: Mapping[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file that ``np.savez`` wrote, read without ``np.load``: every member is checked
    before its data is decompressed.

    Args:
        path: the file; a regular file of at most ``file_cap("npz")``.
        layout: each array's name, with the dtype kinds (``"f"``, ``"iu"``, ``"U"``) and number of dimensions it
            must have. The file must hold these arrays and no other.

    Raises:
        ValueError: a predicate for a message: a member missing, repeated or unknown, declared sizes over
            :data:`MAX_TENSOR_BYTES`, a ``.npy`` header that is not one or declares another dtype, more dimensions or
            more bytes than the member holds, a member that holds more than its header declares.
    """
    try:
        f = open_regular(path, file_cap("npz"))
    except ValueError as exc:
        raise ValueError(f"it {exc}") from None
    wanted = {f"{name}.npy": name for name in layout}
    with f:
        _check_directory(f, len(wanted))
        with zipfile.ZipFile(f) as archive:
            return _read_members(archive, wanted, layout)


def _read_members(
    archive: zipfile.ZipFile, wanted: Mapping[str, str], layout: Mapping[str, tuple[str, int]]
) -> dict[str, np.ndarray]:
    """The arrays of ``archive``, once its directory names each of ``wanted`` once and declares a bounded size."""
    members = archive.infolist()
    names = [m.filename for m in members]
    if sorted(names) != sorted(wanted):
        missing, extra = sorted(set(wanted) - set(names)), sorted(set(names) - set(wanted))
        what = f"lacks {missing[0]}" if missing else f"holds {extra[0]}" if extra else "repeats a member"
        raise ValueError(f"it {what}, not exactly {', '.join(wanted)}")
    declared = sum(m.file_size for m in members)
    if declared > MAX_TENSOR_BYTES:
        raise ValueError(
            f"it declares {declared / 2**20:,.0f} MiB of arrays uncompressed, over the "
            f"{MAX_TENSOR_BYTES // 2**20} MiB a scorer's file may hold"
        )
    return {wanted[m.filename]: _read_npy(archive, m, *layout[wanted[m.filename]]) for m in members}


#: The record that ends a zip archive without a comment (``np.savez`` writes none): signature, two disk numbers, the
#: members on this disk and in all, the central directory's size and offset, the comment's length (PKWARE's APPNOTE
#: 4.3.16); and the signature of the zip64 locator that would stand before it.
_END = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = b"PK\x06\x07"


def _check_directory(f: IO[bytes], members: int) -> None:
    """Refuse an archive whose central directory is not that of ``members`` small entries, before ``zipfile`` reads
    it: it builds one object per entry, and a directory of millions of empty entries is a memory bomb of its own (a
    26 MB one of 300,000 took 150 MB). ``np.savez`` writes about 60 bytes an entry and no zip64 record."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _END.size - 20))
    tail = f.read()
    signature, _, _, _, total, directory, _, comment = _END.unpack(tail[-_END.size :].rjust(_END.size, b"\0"))
    if signature != b"PK\x05\x06" or comment:
        raise ValueError("it is not a zip archive as np.savez writes one (no end record, or one with a comment)")
    if total != members or directory > members * 1024 or tail.startswith(_ZIP64_LOCATOR):
        raise ValueError(
            f"its zip directory declares {total} members in {directory:,} bytes (or a zip64 record), not the "
            f"{members} small ones np.savez writes"
        )
    f.seek(0)


def _read_npy(archive: zipfile.ZipFile, member: zipfile.ZipInfo, kinds: str, ndim: int) -> np.ndarray:
    """One ``.npy`` member: its header read and checked first, then exactly the bytes it declares."""
    from numpy.lib import format as npy

    name = member.filename
    with archive.open(member) as f:
        version = npy.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"its {name} is an .npy of version {version}, not one np.savez writes")
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        if dtype.hasobject or dtype.kind not in kinds or len(shape) != ndim:
            raise ValueError(f"its {name} declares a {len(shape)}-dimensional {dtype} array, not {_kinds(kinds, ndim)}")
        size = math.prod(shape) * dtype.itemsize
        if size > member.file_size:
            raise ValueError(
                f"its {name} declares a {list(shape)} {dtype} array ({size:,} bytes), more than its "
                f"{member.file_size:,} bytes hold"
            )
        data = f.read(size)
        if len(data) != size or f.read(1):
            raise ValueError(f"its {name} holds other than the {size:,} bytes its header declares")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _kinds(kinds: str, ndim: int) -> str:
    words = {"f": "float", "i": "integer", "u": "unsigned integer", "U": "string"}
    return f"a {ndim}-dimensional {' or '.join(words[k] for k in kinds)} array"


#: The files of a scorer repo that :meth:`~hf_spider.scorer.model.TransferScorer.from_pretrained` downloads, in order.
SCORER_FILES = ("config.json", "model.safetensors")


def check_hub_sizes(
    repo_id: str,
    filenames: Sequence[str],
    *,
    required: bool,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> None:
    """Refuse the files of a Hub scorer repo that are over their cap (:func:`file_cap`) before ``hf_hub_download``
    fetches them: it takes whatever size a repo holds, and the checks above see a file once it is on disk in full, so
    a hostile repo's 50 GB ``model.safetensors`` or ``config.json`` would be downloaded first.

    The sizes come from :func:`hf_spider.hub.sizes.download_sizes`: one ``HfApi.get_paths_info`` request (one for
    all the files of a :func:`~hf_spider.hub.sizes.one_size_request` block), asked only for the files a download
    would fetch: none offline, none the cache holds. A file fetched unasked (a cached branch that has moved on) is
    still checked on disk.

    Args:
        repo_id: the scorer's Hub repo; ``revision``, ``token``, ``cache_dir``, ``force_download`` and
            ``local_files_only`` as the caller's ``hf_hub_download`` is given them.
        filenames: the files about to be downloaded.
        required: whether each of ``filenames`` must be in the repo. A scorer's files are: without
            ``model.safetensors`` the Hub mixin would fall back to downloading a pickled ``pytorch_model.bin`` in
            full, only to refuse it. The task-aware model beside it is not.

    Raises:
        ScorerConfigError: a file over its cap (its name, size and the cap), or a required one the repo lacks.
        huggingface_hub's errors, as ``hf_hub_download`` would raise them, for the caller to word as it words the
            download's (:func:`hub_errors`): ``RepositoryNotFoundError``, ``GatedRepoError``,
            ``RevisionNotFoundError``, and ``LocalEntryNotFoundError`` when the Hub cannot be reached.
    """
    sizes = download_sizes(
        repo_id,
        filenames,
        what=f"the sizes of {repo_id}'s scorer files",
        revision=revision,
        token=token,
        cache_dir=cache_dir,
        force_download=force_download,
        local_files_only=local_files_only,
    )
    at = _at(revision)
    for name in filenames:
        size = sizes.get(name, 0)  # 0: not asked, the cache holds it
        if size is None and required:
            raise ScorerConfigError(_lacks(name, at))
        if size is not None and size > file_cap(name):
            raise ScorerConfigError(
                f"its {name} on the Hub{at} {_too_big(size, file_cap(name))}, so it is not downloaded; {_PUSHED}"
            )


def _at(revision: str | None) -> str:
    return f" at revision '{revision}'" if revision else ""


def _lacks(filename: str, at: str) -> str:
    return f"its Hub repo{at} holds no {filename}, so it is no scorer repo; {_PUSHED}"


@contextlib.contextmanager
def hub_errors(source: str, filename: str, revision: str | None) -> Iterator[None]:
    """What the Hub said while a scorer's ``filename`` was downloaded, or its size asked (:func:`check_hub_sizes`), as
    what to fix (the mixin would go on without a config, and then blame a version mismatch for a repo or revision
    that does not exist)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = _at(revision)
    try:
        yield
    except GatedRepoError as exc:
        raise ScorerConfigError(
            "its Hub repo is gated; accept its terms on the Hub, then log in (`hf auth login`) or pass a token"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ScorerConfigError(
            "no such repo on the Hub (or a private one the token given cannot see); check the repo id, or log in "
            "with `hf auth login`"
        ) from exc
    except RevisionNotFoundError as exc:
        raise ScorerConfigError(
            f"its Hub repo has no revision '{revision}'; pass a branch, tag or commit of the repo, or none for main"
        ) from exc
    except LocalEntryNotFoundError as exc:
        raise ScorerConfigError(
            f"its {filename}{at} is not in the local cache and the Hub cannot be reached (HF_HUB_OFFLINE is set, or "
            f"no connection); run `hf download {source}` while online, or unset HF_HUB_OFFLINE"
        ) from exc
    except EntryNotFoundError as exc:
        raise ScorerConfigError(_lacks(filename, at)) from exc


def _show(value: Any) -> str:
    """A config value for a message, shortened (a 4,000-digit number, a list of a million ids)."""
    return reprlib.repr(value)
