"""The task-aware ranking model: one model x task latent structure over records of several protocols, read for a new
task from what the user says about it (description, label names, samples, name).

In the spirit of Fennec (a latent transfer space) and ModelLens (a model x dataset space learned from public
evaluation records), sized for a few hundred models and tasks:

* records of every protocol (:mod:`hf_spider.scorer.protocols`) are z-scored within each task, which calibrates each
  protocol's scale per task; the fit reads each task's records as *normal scores* (:func:`normal_scores`: ranks
  through the normal quantile function). What is ranked is a ranking, so only the order within a task should shape the
  fit: a squared loss on raw z-scores lets one broken model (a z of -5 where the rest span -2..2) pull the factors
  toward explaining it, where a normal score keeps it last and bounded. The scores then predicted are on the scale of
  the normal CDF's percentiles, which is how :func:`read_for_task` reads them;
* the normal scores are fitted as ``s[m, t] = b[m] + c[t] + u[m] . v[t]``: an additive part (a model's general
  strength ``b`` with each task's offset ``c``, so a model recorded on strong company only is not read as weak) and a
  low-rank residual (ridge alternating least squares, :func:`als`);
* a ridge map from a task's text features to its factor ``v`` reads an unseen task, one map per protocol: a model's
  predicted score is ``b[m] + u[m] . (W_p f + w_p)``, ``p`` the protocol of its records. Without task features
  (``f`` absent) it is the same model's static list ``b[m] + u[m] . mean(v_p)``;
* a model that declares it was trained on the task's own data (MTEB's model metadata:
  :attr:`~hf_spider.scorer.protocols.ProtocolRecords.declared`) scores higher there than its place elsewhere says.
  The prediction adds one effect ``e`` for those models, measured as a new task meets it: on folds of the training
  tasks that have such models, held out of the fit by group, as the declaring models' mean lift over the prediction
  beside the other models of the task (:func:`declared_effect`). A task to rank gets it when it is an MTEB task (by
  name, or by the Hub dataset its samples come from);
* task features are embeddings by the package's text encoder (``sentence-transformers/all-MiniLM-L6-v2``) of the
  task's *views*: its description, its label names (mean of each name's embedding, as the task tokens have them), its
  samples (mean of the class prototypes, when encoded with that encoder) and its name in words. A task's feature holds
  the normalised mean of the views it has (a block every view shares) and each view in its own block (what that view
  says in its own terms, zeros where missing); training adds each task's single views as extra rows of the same
  factor, so a task known by its label names alone lands where its described siblings were learned.
  This layout and the normal scores were picked while developing against the MTEB benchmark's folds (mean alone,
  blocks alone, both; z-scores, clipped z-scores, normal scores), design choices that ``docs/task_aware.md`` states
  beside the figures.

Hyper-parameters (:data:`SEARCH_SPACE`) are chosen by :func:`select_config` on inner folds of the training tasks only.
"""

from __future__ import annotations

import itertools
import json
import logging
import lzma
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .checks import check_hub_sizes, loading, parse_json_object, read_npz
from .protocols import (
    ProtocolRecords,
    TaskText,
    declared_training,
    mteb_task_group,
    mteb_tasks_named,
    readable_name,
)

if TYPE_CHECKING:
    from ..hub.records import ModelRecord
    from ..rankers.base import Explained
    from ..tokens.ptm import TextEmbedder
    from ..tokens.task import TaskTokens

#: What a task's feature is made of; each view is one unit vector in the text encoder's space.
VIEWS = ("description", "labels", "samples", "name")
#: Words that say nothing about a task: the CLI's default names for a ``--labels`` or ``--task`` task, and the usual
#: names of a user's file or folder (``train.csv``, ``my_data/``). A name made of them alone has no name view.
UNINFORMATIVE_WORDS = frozenset(
    {"labels", "task", "dataset", "data", "train", "training", "test", "validation", "val", "dev", "samples", "my"}
)
#: Inner-fold search space of :func:`select_config` (every value is tried; ties keep the first).
SEARCH_SPACE: dict[str, tuple[float, ...]] = {"rank": (4, 8), "ridge_alpha": (0.3, 1.0, 3.0)}
#: A task enters an inner validation fold only with at least this many models (the benchmark's own floor).
MIN_MODELS = 20
#: Inner validation folds per selection (deterministic spread over the eligible tasks or groups).
INNER_FOLDS = 8
#: Folds of the training tasks with declaring models that :func:`declared_effect` holds out in turn.
DECLARED_FOLDS = 4
FILE_NAME = "task_aware.npz"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskAwareConfig:
    """Hyper-parameters of :func:`fit_task_aware`.

    Args:
        rank: dimension of the latent model x task residual.
        ridge_alpha: L2 of the map from task features to task factors.
        factor_l2: L2 of the alternating least squares (on both factors).
        bias_l2: L2 of the additive model and task effects.
        iters: alternating least squares sweeps.
        seed: initialisation of the factors.
    """

    rank: int = 8
    ridge_alpha: float = 1.0
    factor_l2: float = 3.0
    bias_l2: float = 1.0
    iters: int = 15
    seed: int = 0


@dataclass(frozen=True)
class TaskFeatures:
    """The views of one task (unit vectors ``[D]``, by name in :data:`VIEWS`)."""

    views: Mapping[str, np.ndarray] = field(default_factory=dict)

    def only(self, *names: str) -> TaskFeatures:
        """These features with only the named views."""
        return TaskFeatures({k: v for k, v in self.views.items() if k in names})

    def vector(self) -> np.ndarray | None:
        """``[(1 + len(VIEWS)) * D]``: the normalised mean of the views (a shared block: what any view says), then each
        view in its own block (zeros where missing: what a view says in its own words); ``None`` without any view."""
        if not self.views:
            return None
        present = [self.views[k] for k in VIEWS if k in self.views]
        blank = np.zeros_like(present[0], dtype=np.float64)
        blocks = [_unit(self.views[k]) if k in self.views else blank for k in VIEWS]
        return np.concatenate([_unit(np.mean(present, axis=0)), *blocks])

    def training_rows(self) -> list[np.ndarray]:
        """The rows a training task contributes: all its views together, and each view alone when it has several."""
        rows = [v for v in [self.vector()] if v is not None]
        if len(self.views) > 1:
            rows += [TaskFeatures({k: self.views[k]}).vector() for k in VIEWS if k in self.views]  # type: ignore[misc]
        return rows


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float64)


def text_features(
    text: TaskText, embed: Callable[[Sequence[str]], np.ndarray], *, samples: np.ndarray | None = None
) -> TaskFeatures:
    """The views of a task: ``embed`` maps strings to the normalised mean of their embeddings
    (:meth:`hf_spider.tokens.ptm.TextEmbedder.mean`); ``samples`` is the ``[D]`` mean class prototype, if any.

    Label names are read through :func:`hf_spider.tokens.ptm.informative_labels`: a task whose classes are only
    ``LABEL_0`` / ``LABEL_1`` has no label view (its ranking is the static list, unless another view speaks)."""
    from ..tokens.ptm import informative_labels

    views: dict[str, np.ndarray] = {}
    if text.description.strip():
        views["description"] = embed([text.description.strip()])
    # as the task tokens read them; generic names (LABEL_0, class 3) say nothing of the task, as in a model's token
    labels = informative_labels([str(label).replace("_", " ").strip() for label in text.label_names])
    if labels:
        views["labels"] = embed(labels)
    if samples is not None and float(np.linalg.norm(samples)) > 0:
        views["samples"] = _unit(samples)
    name = readable_name(text.name)
    if not set(name.lower().split()) <= UNINFORMATIVE_WORDS:
        views["name"] = embed([name])
    return TaskFeatures(views)


def record_features(records: ProtocolRecords, embedder: TextEmbedder | None = None) -> dict[str, TaskFeatures]:
    """The views of every task of ``records``, every string embedded in one encoder call (and cached on disk)."""
    from ..tokens.ptm import TextEmbedder

    embedder = embedder or TextEmbedder()
    strings = {readable_name(t.name) for t in records.tasks.values()}
    strings |= {s.strip() for t in records.tasks.values() for s in (t.description, *t.label_names) if s.strip()}
    embedder.embed_all(strings)
    return {name: text_features(text, embedder.mean) for name, text in records.tasks.items()}


def token_features(task: TaskTokens, embedder: TextEmbedder) -> TaskFeatures:
    """The views of a task to rank: its description, label names and name, and its samples' mean class prototype
    when they were encoded with the embedder's text encoder (a text task of a scorer that reads samples)."""
    from ..constants import DEFAULT_TEXT_ENCODER

    description = task.description
    samples = None
    encoder = task.encoder.get(description.modality, "").rsplit("@", 1)[0]
    if task.prototypes is not None and encoder == (embedder.model_id or DEFAULT_TEXT_ENCODER):
        samples = np.asarray(task.prototypes, dtype=np.float64).mean(0)
    text = TaskText(description.name, description.modality, description.description or "", description.label_names)
    return text_features(text, embedder.mean, samples=samples)


def normal_scores(z: np.ndarray) -> np.ndarray:
    """``[M, T]``: each column's observed entries of ``z`` as normal scores ``Phi^-1((rank - 1/2) / n)`` over its ``n``
    observed entries (ties share their mean rank); NaN (no record) stays NaN.

    A monotone change of a task's scores leaves its normal scores as they are: the fit sees each task's ranking only.
    """
    from scipy.stats import norm, rankdata

    ranks = rankdata(z, axis=0, nan_policy="omit")
    observed = np.maximum((~np.isnan(z)).sum(0), 1)
    return np.asarray(norm.ppf((ranks - 0.5) / observed), dtype=np.float64)


def additive(z: np.ndarray, l2: float, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """``(b [M], c [T])`` of ``z ~ b[m] + c[t]`` over the observed entries of ``z`` ``[M, T]`` (NaN = missing)."""
    known = ~np.isnan(z)
    values = np.nan_to_num(z)
    b, c = np.zeros(z.shape[0]), np.zeros(z.shape[1])
    for _ in range(iters):
        b = ((values - c[None]) * known).sum(1) / (known.sum(1) + l2)
        c = ((values - b[:, None]) * known).sum(0) / (known.sum(0) + l2)
    return b, c


def als(z: np.ndarray, rank: int, l2: float, iters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(U [M, k], V [T, k])`` with ``z ~ U V^T`` on the observed entries: ridge alternating least squares, every row
    of a sweep solved at once (batched normal equations)."""
    known = (~np.isnan(z)).astype(np.float64)
    values = np.nan_to_num(z)
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 0.1, (z.shape[0], rank))
    v = rng.normal(0.0, 0.1, (z.shape[1], rank))
    eye = l2 * np.eye(rank)
    for _ in range(iters):
        v = _ridge_rows(known.T, u, values.T, eye)
        u = _ridge_rows(known, v, values, eye)
    return u, v


def _ridge_rows(known: np.ndarray, other: np.ndarray, values: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """``[R, k]``: for each row ``r`` of ``values`` ``[R, C]``, the ridge solution over its observed columns
    (``known [R, C]``) of ``values[r] ~ other [C, k] @ x``; one batched matmul (BLAS) forms every Gram matrix."""
    gram = np.matmul(known[:, None, :] * other.T[None], other) + eye  # [R, k, k]
    return np.linalg.solve(gram, (values @ other)[..., None])[..., 0]


@dataclass(frozen=True)
class TaskAwareModel:
    """A fitted model: the seen models' effects and factors, and each protocol's map from task features to factors.

    Each protocol has its own map: a task's factor is read against the models of that protocol's records, and models
    recorded under different protocols share no axis of the latent space unless some model has records of both.

    Args:
        model_ids: the seen models (rows).
        bias: ``[M]`` each model's additive effect.
        factors: ``[M, k]`` each model's latent factor.
        protocol_index: ``[M]`` each model's protocol (the one most of its records have) in ``protocols``.
        protocols: the protocols of the records.
        coef / intercept: ``[P, k, D]`` / ``[P, k]``: task feature -> task factor, per protocol.
        mean_factor: ``[P, k]`` each protocol's mean task factor (the read-out for a task that says nothing).
        config: the hyper-parameters it was fitted with.
        confidence: the mean weighted tau of its setting on the inner folds it was chosen on (0 when not measured).
        declared_effect: what a model's declared training on the task's own data adds to its predicted score.
    """

    model_ids: tuple[str, ...]
    bias: np.ndarray
    factors: np.ndarray
    protocol_index: np.ndarray
    protocols: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    mean_factor: np.ndarray
    config: TaskAwareConfig
    confidence: float = 0.0
    declared_effect: float = 0.0

    def predict(self, features: TaskFeatures | None, declared: np.ndarray | None = None) -> np.ndarray:
        """``[M]`` predicted normal score (:func:`normal_scores`) of every seen model; the static list when
        ``features`` has no view. ``declared`` ``[M]`` marks the models that declare training on this task's data
        (:meth:`declared_on`)."""
        vector = features.vector() if features is not None else None
        factor = self.mean_factor if vector is None else self.coef @ vector + self.intercept  # [P, k]
        score = self.bias + (self.factors * factor[self.protocol_index]).sum(1)
        if declared is not None:
            score = score + self.declared_effect * np.asarray(declared, dtype=np.float64)
        return np.asarray(score)

    def declared_on(self, tasks: Collection[str], pairs: Collection[tuple[str, str]] | None = None) -> np.ndarray:
        """``[M]`` whether each seen model declares training on any of ``tasks`` (``pairs``: ``(model, task)``,
        default the shipped MTEB declarations)."""
        marks = declared_matrix(self.model_ids, list(tasks), declared_training() if pairs is None else pairs)
        return np.asarray(marks.any(axis=1))

    def rows_of(self, model_ids: Sequence[str]) -> np.ndarray:
        """``[N]`` row of each model id, ``-1`` for models without records."""
        row = {m: i for i, m in enumerate(self.model_ids)}
        return np.fromiter((row.get(m, -1) for m in model_ids), dtype=np.int64, count=len(model_ids))

    def protocol_of(self, row: int) -> str:
        """The protocol of the records of the model at ``row``."""
        return self.protocols[int(self.protocol_index[row])]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model as one ``.npz`` (arrays plus a JSON header), atomically."""
        from ..hub.output_paths import atomic_write

        header = {
            "model_ids": list(self.model_ids),
            "protocols": list(self.protocols),
            "config": asdict(self.config),
            "confidence": self.confidence,
            "declared_effect": self.declared_effect,
        }
        with atomic_write(path, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header, sort_keys=True)), **{k: getattr(self, k) for k in _ARRAYS})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TaskAwareModel:
        """Read a model :meth:`save` wrote, checked before it is decompressed (the file may come from the Hub): its
        members, their declared sizes and ``.npy`` headers (:func:`~hf_spider.scorer.checks.read_npz`; no
        ``np.load``, so no pickle either), then its header's fields.

        Raises:
            ValueError: the file is not a task-aware model, or its arrays do not fit together (one line, whatever
                the zip, its compression or its header got wrong).
        """
        try:
            arrays = read_npz(Path(path), _LAYOUT)
            header = _header(arrays.pop("header"))
            config = header.get("config")
            if not isinstance(config, dict):
                raise ValueError("its header has no config object")
            model = cls(
                model_ids=_strings(header, "model_ids"),
                protocols=_strings(header, "protocols"),
                config=TaskAwareConfig(**config),
                confidence=_number(header, "confidence", 0.0, 1.0),
                declared_effect=_number(header, "declared_effect", -math.inf, math.inf),
                **arrays,
            )
        # a hostile archive fails in zipfile's, zlib's, bz2's or lzma's ways; a header with another config, in TypeError
        except (
            OSError,
            ValueError,
            TypeError,
            RuntimeError,
            EOFError,
            zipfile.BadZipFile,
            zlib.error,
            lzma.LZMAError,
        ) as exc:
            raise ValueError(f"'{path}' is not a task-aware model ({str(exc) or type(exc).__name__})") from exc
        model._check_shapes(path)
        return model

    def _check_shapes(self, path: str | os.PathLike[str]) -> None:
        """Raise ``ValueError`` unless the arrays fit the header and each other and hold finite numbers only (a file
        from the Hub is untrusted: a NaN would rank every encoder on nothing)."""
        m, p = len(self.model_ids), len(self.protocols)
        k = self.factors.shape[-1] if self.factors.ndim == 2 else -1
        expected = {
            "bias": (m,),
            "factors": (m, k),
            "protocol_index": (m,),
            "coef": (p, k, self.coef.shape[-1] if self.coef.ndim == 3 else -1),
            "intercept": (p, k),
            "mean_factor": (p, k),
        }
        wrong = [name for name, shape in expected.items() if getattr(self, name).shape != shape]
        index = self.protocol_index
        if not wrong and m and not (np.issubdtype(index.dtype, np.integer) and index.min() >= 0 and index.max() < p):
            wrong.append("protocol_index")
        wrong += [name for name in _ARRAYS if name not in wrong and not np.isfinite(getattr(self, name)).all()]
        if wrong or k < 0:
            raise ValueError(f"'{path}' is not a task-aware model: its {', '.join(wrong) or 'factors'} do not fit")


def task_aware_beside(
    source: str | os.PathLike[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> TaskAwareModel | None:
    """The task-aware model saved beside a scorer (``task_aware.npz``): in its folder, or in its Hub repo
    (``hf_hub_download``, once the Hub says it is within its cap, :func:`~hf_spider.scorer.checks.check_hub_sizes`);
    ``None`` when the scorer has none, or it is not in the local cache offline (logged).

    Raises:
        ScorerConfigError: the file is there but is not a task-aware model, or it is over the cap on the Hub.
    """
    folder = Path(source)
    if folder.is_dir():
        path = folder / FILE_NAME
        return _load_beside(path, source) if os.path.lexists(path) else None  # a link to /dev/zero is refused
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    hub: dict[str, Any] = {
        "revision": revision,
        "token": token,
        "cache_dir": cache_dir,
        "local_files_only": local_files_only,
    }
    try:
        with loading(str(source)):
            check_hub_sizes(str(source), (FILE_NAME,), required=False, **hub)
        downloaded = hf_hub_download(str(source), FILE_NAME, **hub)
    except LocalEntryNotFoundError:
        logger.warning("%s of %s is not in the local cache: only its scorer ranks", FILE_NAME, source)
        return None
    except EntryNotFoundError:  # a scorer pushed without one
        return None
    return _load_beside(downloaded, source)


def _load_beside(path: str | os.PathLike[str], scorer: str | os.PathLike[str]) -> TaskAwareModel:
    from ..errors import ScorerConfigError

    try:
        return TaskAwareModel.load(path)
    except ValueError as exc:
        raise ScorerConfigError(
            f"cannot load the task-aware model beside the scorer '{scorer}' ({exc}); retrain both with "
            "`hf-spider train-scorer`"
        ) from exc


#: What :meth:`TaskAwareModel.save` writes: the JSON header, and each array with its dtype kinds and dimensions.
_LAYOUT = {
    "header": ("U", 0),
    "bias": ("f", 1),
    "factors": ("f", 2),
    "protocol_index": ("iu", 1),
    "coef": ("f", 3),
    "intercept": ("f", 2),
    "mean_factor": ("f", 2),
}
_ARRAYS = tuple(name for name in _LAYOUT if name != "header")


def _header(array: np.ndarray) -> dict[str, object]:
    try:
        return parse_json_object(str(array))
    except ValueError as exc:
        raise ValueError(f"its header {exc}") from None


def _strings(header: Mapping[str, object], key: str) -> tuple[str, ...]:
    values = header.get(key)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"its header's {key} is not a list of strings")
    return tuple(values)


def _number(header: Mapping[str, object], key: str, low: float, high: float) -> float:
    """A number of the header (0 when absent: files written before it was), finite and in ``[low, high]``: it is
    written into every shortlist the model ranks, and JSON has no NaN."""
    value = header.get(key, 0.0)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (math.isfinite(value) and low <= value <= high)
    ):
        raise ValueError(f"its header's {key} is {value!r}, not a finite number in [{low}, {high}]")
    return float(value)


@dataclass(frozen=True)
class _Factors:
    """The fitted records: model effects ``b [M]``, model factors ``u [M, k]``, task factors ``v [T, k]``."""

    b: np.ndarray
    u: np.ndarray
    v: np.ndarray


def declared_matrix(model_ids: Sequence[str], tasks: Sequence[str], pairs: Collection[tuple[str, str]]) -> np.ndarray:
    """``[M, T]`` whether each model declares training on each task's data (``pairs``: ``(model, task)``)."""
    pairs = pairs if isinstance(pairs, (set, frozenset)) else set(pairs)
    marks = np.zeros((len(model_ids), len(tasks)), dtype=bool)
    for i, m in enumerate(model_ids):
        marks[i] = [(m, t) in pairs for t in tasks]
    return marks


def _fit_factors(z: np.ndarray, config: TaskAwareConfig) -> _Factors:
    """The effects and factors of the normal scores of ``z`` ``[M, T]`` (:func:`normal_scores`)."""
    scores = normal_scores(z)
    b, c = additive(scores, config.bias_l2)
    u, v = als(scores - b[:, None] - c[None], config.rank, config.factor_l2, config.iters, config.seed)
    return _Factors(b, u, v)


def _fit_map(
    factors: _Factors, tasks: Sequence[str], features: Mapping[str, TaskFeatures], alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(coef [k, D], intercept [k])`` of the ridge map from task features to task factors; every training row of a
    task (:meth:`TaskFeatures.training_rows`) carries the task's factor, the rows of one task weighing 1 together.

    Weighted ridge with an unpenalised intercept, solved in closed form (one ``[D, D]`` system for every factor).
    """
    rows, targets, weights = [], [], []
    for j, task in enumerate(tasks):
        task_rows = features[task].training_rows() if task in features else []
        for row in task_rows:
            rows.append(row)
            targets.append(factors.v[j])
            weights.append(1.0 / len(task_rows))
    if not rows:  # no task has a view: every task reads as the mean task
        dim = next((len(r) for f in features.values() for r in f.training_rows()), 1)
        return np.zeros((factors.v.shape[1], dim)), factors.v.mean(0)
    x, y, w = np.array(rows), np.array(targets), np.array(weights)[:, None]
    x_mean, y_mean = (w * x).sum(0) / w.sum(), (w * y).sum(0) / w.sum()
    xw, yw = np.sqrt(w) * (x - x_mean), np.sqrt(w) * (y - y_mean)  # [n, D], [n, k]
    if len(xw) < xw.shape[1]:  # fewer rows than features: the dual system is the smaller one (same solution)
        coef = (xw.T @ np.linalg.solve(xw @ xw.T + alpha * np.eye(len(xw)), yw)).T  # [k, D]
    else:
        coef = np.linalg.solve(xw.T @ xw + alpha * np.eye(xw.shape[1]), xw.T @ yw).T
    return coef, y_mean - coef @ x_mean


def fit_task_aware(
    z: pd.DataFrame,
    features: Mapping[str, TaskFeatures],
    config: TaskAwareConfig | None = None,
    *,
    protocol_of: Mapping[str, str] | None = None,
    declared: Collection[tuple[str, str]] = (),
    factors: _Factors | None = None,
) -> TaskAwareModel:
    """Fit on the z-scores ``z`` ``[models, tasks]`` (NaN = no record), read as normal scores, and each task's
    ``features``.

    A task without any view still shapes the models' effects and factors; it gives the feature map no row.
    ``protocol_of`` names each task's protocol (default: one protocol, ``"records"``). ``declared`` holds the
    ``(model, task)`` pairs of declared training; their effect is measured on held-out folds
    (:func:`declared_effect`; none declared: no effect). ``factors`` (fitted on ``z`` with ``config``) skips refitting
    them when only ``ridge_alpha`` changes.
    """
    config = config or TaskAwareConfig()
    factors = factors or _fit_factors(z.to_numpy(dtype=np.float64), config)
    tasks = [str(t) for t in z.columns]
    of_task = np.array([(protocol_of or {}).get(t, "records") for t in tasks])
    protocols = tuple(sorted(set(of_task.tolist())))
    maps = []
    for protocol in protocols:
        mine = of_task == protocol
        mapped = _fit_map(
            replace(factors, v=factors.v[mine]),
            [t for t, m in zip(tasks, mine, strict=True) if m],
            features,
            config.ridge_alpha,
        )
        maps.append((*mapped, factors.v[mine].mean(0)))
    counts = np.stack([(z.notna().to_numpy() & (of_task == p)[None]).sum(1) for p in protocols], axis=1)  # [M, P]
    return TaskAwareModel(
        model_ids=tuple(str(m) for m in z.index),
        bias=factors.b,
        factors=factors.u,
        protocol_index=counts.argmax(1),
        protocols=protocols,
        coef=np.stack([m[0] for m in maps]),
        intercept=np.stack([m[1] for m in maps]),
        mean_factor=np.stack([m[2] for m in maps]),
        config=config,
        declared_effect=declared_effect(z, features, config, declared, protocol_of=protocol_of),
    )


def declared_effect(
    z: pd.DataFrame,
    features: Mapping[str, TaskFeatures],
    config: TaskAwareConfig,
    declared: Collection[tuple[str, str]],
    *,
    protocol_of: Mapping[str, str] | None = None,
    folds: int = DECLARED_FOLDS,
) -> float:
    """How much higher than predicted a model ranks on a task whose data it declares it was trained on.

    The tasks of ``z`` that have declaring models are dealt by group (:func:`mteb_task_group`) into ``folds`` folds;
    each fold is held out of a fit (no declared training in it) and its tasks are predicted as a new task would be.
    The effect is the declaring models' mean residual, each against the mean residual of the task's other models
    (the task's offset), in normal-score units, shrunk like one more model at zero. A fit's own tasks would not do:
    the factors learn the declaring models' lift there, and it would look smaller than a new task meets it.
    """
    pairs = declared if isinstance(declared, (set, frozenset)) else frozenset(declared)
    if not pairs:
        return 0.0
    marks = pd.DataFrame(
        declared_matrix([str(m) for m in z.index], [str(t) for t in z.columns], pairs), z.index, z.columns
    )
    marks &= z.notna()
    tasks = [t for t in z.columns if marks[t].any() and (~marks[t] & z[t].notna()).any()]
    groups = list(dict.fromkeys(mteb_task_group(str(t)) for t in tasks))
    lifts: list[np.ndarray] = []
    for fold in range(min(folds, len(groups))):
        held = [t for t in tasks if groups.index(mteb_task_group(str(t))) % folds == fold]
        model = fit_task_aware(z.drop(columns=held), features, config, protocol_of=protocol_of)
        rows = model.rows_of([str(m) for m in z.index])
        for t in held:
            known = z[t].notna().to_numpy() & (rows >= 0)
            residual = normal_scores(z[[t]].to_numpy(dtype=np.float64))[known, 0]
            residual -= model.predict(features.get(str(t)))[rows[known]]
            mine = marks[t].to_numpy()[known]
            lifts.append(residual[mine] - residual[~mine].mean())
    lift = np.concatenate(lifts) if lifts else np.zeros(0)
    return float(lift.sum() / (len(lift) + 1.0))


def weighted_tau(truth: pd.Series, predicted: pd.Series) -> float:
    """``scipy.stats.weightedtau`` of ``predicted`` against ``truth`` over the models of ``truth``."""
    from scipy.stats import weightedtau

    return float(weightedtau(truth.to_numpy(), predicted.reindex(truth.index).fillna(-1e9).to_numpy())[0])


def select_config(
    z: pd.DataFrame,
    features: Mapping[str, TaskFeatures],
    group_of: Callable[[str], str],
    *,
    base: TaskAwareConfig | None = None,
    space: Mapping[str, Sequence[float]] | None = None,
    folds: int = INNER_FOLDS,
    protocol_of: Mapping[str, str] | None = None,
    scored: Collection[str] | None = None,
) -> tuple[TaskAwareConfig, dict[str, float]]:
    """The setting of ``space`` with the best mean weighted tau on inner folds of ``z``'s tasks.

    ``space`` has the keys ``rank`` and ``ridge_alpha``. Each inner fold holds out one group (``group_of``: the task
    itself for leave-one-task-out, its group for leave-a-group-out) of the tasks with at least :data:`MIN_MODELS`
    models, spread deterministically over them. ``scored`` keeps the held-out tasks to those protocols (by
    ``protocol_of``; default every one): the inner folds then score what the model is used for, every record still
    trains it. The settings are chosen without declared training (:func:`declared_effect` is measured after).

    Returns:
        the chosen config and the mean inner weighted tau of every setting tried (keyed by its JSON).
    """
    base = base or TaskAwareConfig()
    space = space or SEARCH_SPACE
    eligible = [
        t
        for t in z.columns
        if z[t].notna().sum() >= MIN_MODELS and (scored is None or (protocol_of or {}).get(t, "records") in scored)
    ]
    groups = list(dict.fromkeys(group_of(t) for t in eligible))
    chosen = groups[:: max(1, len(groups) // folds)][:folds]
    scores: dict[str, float] = {}
    taus: dict[tuple[float, float], list[float]] = {}
    for group in chosen:
        held = [t for t in z.columns if group_of(t) == group]
        train = z.drop(columns=held)
        for rank in space["rank"]:
            fitted = replace(base, rank=int(rank))
            factors = _fit_factors(train.to_numpy(dtype=np.float64), fitted)
            for alpha in space["ridge_alpha"]:
                model = fit_task_aware(
                    train, features, replace(fitted, ridge_alpha=float(alpha)), protocol_of=protocol_of, factors=factors
                )
                index = pd.Index(model.model_ids)
                for t in held:
                    if t in eligible:
                        predicted = pd.Series(model.predict(features.get(t)), index=index)
                        taus.setdefault((rank, alpha), []).append(weighted_tau(z[t].dropna(), predicted))
    best: tuple[float, TaskAwareConfig] | None = None
    for rank, alpha in itertools.product(space["rank"], space["ridge_alpha"]):
        score = float(np.mean(taus[(rank, alpha)])) if taus.get((rank, alpha)) else float("-inf")
        scores[json.dumps({"rank": rank, "ridge_alpha": alpha})] = score
        if best is None or score > best[0]:
            best = (score, replace(base, rank=int(rank), ridge_alpha=float(alpha)))
    assert best is not None
    return best[1], scores


def train_task_aware(
    records: ProtocolRecords,
    *,
    embedder: TextEmbedder | None = None,
    scored: Collection[str] | None = ("linear_probe",),
) -> TaskAwareModel:
    """The shipped model: its setting chosen on leave-a-group-out inner folds (:func:`mteb_task_group`; any other
    task is its own group) that hold out tasks of the ``scored`` protocols, then fitted on every record; its confidence
    is that setting's inner weighted tau. By default the inner folds score MTEB's tasks: the shipped model ranks the
    encoders known by MTEB records, while the Model Spider scorer ranks the TransferGraph models itself
    (:func:`read_for_task`). BLAS runs on one thread: thousands of small solves would only contend, and every caller
    (``train-scorer``, the rebuild script) then fits the same numbers."""
    from threadpoolctl import threadpool_limits

    z = records.z_matrix()
    features = record_features(records, embedder)
    protocol_of = records.protocol_of()
    with threadpool_limits(limits=1):
        config, scores = select_config(z, features, mteb_task_group, protocol_of=protocol_of, scored=scored)
        model = fit_task_aware(z, features, config, protocol_of=protocol_of, declared=records.declared)
    return replace(model, confidence=float(np.clip(max(scores.values()), 0.0, 1.0)))


def read_for_task(
    explained: Explained,
    task: TaskTokens,
    candidates: Sequence[ModelRecord],
    model: TaskAwareModel,
    scored: Sequence[str],
    text_encoder: str | None,
) -> Explained:
    """``explained`` (the Model Spider scorer's) with the candidates that ``model`` has records of and the scorer has
    not (``scored``: the scorer's own models) scored for ``task`` by ``model``: the predicted normal score as an
    expected percentile (the normal CDF: normal scores are percentiles within a task through the normal quantile
    function), evidence ``records``, the model's confidence. A task that is an MTEB task (its name, or the Hub dataset
    its samples come from: :func:`~hf_spider.scorer.protocols.mteb_tasks_named`) lifts the models that declare
    training on its data by the model's ``declared_effect``, and their details say so.

    Both Model Spider rankers (the torch one and the numpy one the CLI loads) call this, so they rank alike.
    """
    from scipy.stats import norm

    from ..rankers.base import Explained
    from ..tokens.ptm import TextEmbedder

    model_ids = [c.repo_id for c in candidates]
    rows = model.rows_of(model_ids)
    ours = (rows >= 0) & ~np.isin(model_ids, list(scored))
    if not ours.any():
        return explained
    features = token_features(task, TextEmbedder(text_encoder))
    named = sorted(mteb_tasks_named([task.description.name], [task.description.hub_dataset]))
    declared = model.declared_on(named)
    scores = explained.scores.copy()
    scores[ours] = norm.cdf(model.predict(features, declared)[rows[ours]])
    evidence, confidence, details = list(explained.evidence), explained.confidence.copy(), list(explained.details)
    read = ", ".join(features.views) or "nothing (static list)"
    for i in np.flatnonzero(ours):
        evidence[i] = "records"
        confidence[i] = model.confidence
        details[i] = f"{model.protocol_of(rows[i]).replace('_', '-')} records, read for the task from its {read}"
        if declared[rows[i]]:
            details[i] += f"; declares training on {', '.join(named)} (MTEB metadata)"
    return Explained(scores=scores, evidence=tuple(evidence), confidence=confidence, details=tuple(details))
