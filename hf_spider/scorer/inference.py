"""The scorer's inference without torch: the shipped scorer read from its ``model.safetensors`` into numpy.

Importing torch takes about a second, most of the 1.5 s a warm ``hf-spider rank`` may take, and scoring needs none
of it: a scorer whose content path was never trained (the shipped one; :meth:`_Member.content_trained`) is a linear
read-out of table look-ups plus a regression forest. :class:`NumpyScorer` evaluates exactly
:meth:`TransferScorer.explain_tokens <hf_spider.scorer.model.TransferScorer.explain_tokens>` for such a scorer, in
numpy (a test compares the two on every evidence kind); :func:`load_spider_ranker` returns it when the scorer folder
allows, and the torch :class:`~hf_spider.scorer.ranker.SpiderRanker` otherwise (a trained content path, a Hub repo).
The equations and their reasons are documented on the torch methods named in each docstring here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScorerConfigError
from ..hub.records import ModelRecord
from ..outputs.shortlist import EVIDENCE_KINDS
from ..rankers.base import Explained, Ranker, evidence_detail
from ..tokens.metadata import METADATA_NAMES
from ..tokens.ptm import HEAD_DIM, PTM_SCHEMA_VERSION, PTMTokens, family_slice, metadata_slice, text_slice
from .checks import check_local_source, expected_tensors, loading, read_config, read_weights
from .paths import default_scorer_path
from .task_aware import TaskAwareModel, read_for_task, task_aware_beside

#: The task-similarity temperatures of the read-out this module evaluates (``hf_spider.scorer.pair``'s).
SIMILARITY_TEMPERATURES = (0.05, 0.2)
_METADATA = {name: i for i, name in enumerate(METADATA_NAMES)}
_DENSE_LEVELS = 4  # forest levels every pair walks before finished pairs leave (as hf_spider.scorer.forest)
_BLOCK = 4096  # candidates walked at once (as hf_spider.scorer.forest.BLOCK)


def load_spider_ranker(path: str | os.PathLike[str] | None = None) -> Ranker:
    """The Model Spider ranker of a scorer folder (default: the shipped one): torch-free when the scorer allows."""
    folder = Path(path) if path is not None else default_scorer_path()
    check_local_source(str(folder))
    scorer = NumpyScorer.from_folder(folder) if folder.is_dir() else None
    if scorer is not None:
        return scorer
    from .ranker import SpiderRanker

    return SpiderRanker.from_pretrained(path)


@dataclass(eq=False)
class NumpyScorer:
    """A :class:`TransferScorer` without a trained content path, evaluated in numpy (see the module docstring)."""

    config: dict[str, Any]
    weights: dict[str, np.ndarray]
    name: str = "hf_spider"
    task_aware: TaskAwareModel | None = None

    @classmethod
    def from_folder(cls, folder: Path) -> NumpyScorer | None:
        """The scorer saved in ``folder``, ``None`` if its content path was trained (the caller then loads it with
        torch); its files are checked as the torch scorer's are (:mod:`hf_spider.scorer.checks`).

        Raises:
            ScorerConfigError: a file that is not what a scorer saves, in one line naming the folder and the fix.
        """
        with loading(str(folder)):
            config = read_config(folder / "config.json")
            weights = read_weights(folder / "model.safetensors", expected_tensors(config))
        for m in range(config["members"]):
            if any(np.any(weights[f"members.{m}.out.{p}"] != 0) for p in ("weight", "bias")):
                return None
        # the task-aware model saved beside the scorer, if any
        return cls(config=config, weights=weights, task_aware=task_aware_beside(folder))

    @property
    def text_encoder(self) -> str | None:
        return self.config.get("text_encoder")

    @property
    def sample_encoders(self) -> dict[str, str] | None:
        return self.config.get("sample_encoders")

    @property
    def model_ids(self) -> list[str]:
        return list(self.config.get("model_ids") or [])

    def score(self, task: Any, candidates: Sequence[ModelRecord]) -> np.ndarray:
        return self.explain(task, candidates).scores

    def explain(self, task: Any, candidates: Sequence[ModelRecord]) -> Explained:
        """``SpiderRanker.explain``: precomputed tokens of the default pool, else tokens built from the records; the
        models of the task-aware model read for the task (:func:`~hf_spider.scorer.task_aware.read_for_task`)."""
        from ..tokens.pool_tokens import precomputed_tokens
        from ..tokens.ptm import ptm_tokens

        tokens = precomputed_tokens(candidates, text_encoder=self.text_encoder)
        explained = self.explain_tokens(tokens or ptm_tokens(candidates, text_encoder=self.text_encoder), task)
        if self.task_aware is None:
            return explained
        return read_for_task(explained, task, candidates, self.task_aware, self.model_ids, self.text_encoder)

    def explain_tokens(self, tokens: PTMTokens, task: Any) -> Explained:
        """``TransferScorer.explain_tokens`` in numpy."""
        w, text_dim = self.weights, int(self.config.get("text_dim", 384))
        if tokens.schema_version != PTM_SCHEMA_VERSION or tokens.features.shape[1] != self.config["in_dim"]:
            raise ScorerConfigError(
                f"PTM tokens (schema {tokens.schema_version}, width {tokens.features.shape[1]}) do not match this "
                f"scorer (schema {self.config['feature_schema_version']}, width {self.config['in_dim']}); rebuild "
                "them with hf_spider.tokens.ptm.ptm_tokens and the scorer's text encoder, or retrain the scorer"
            )
        x = np.ascontiguousarray(tokens.features, dtype=np.float32)
        row_of = {m: i for i, m in enumerate(self.model_ids)}
        rows = np.fromiter((row_of.get(m, -1) for m in tokens.model_ids), dtype=np.int64, count=len(x))
        recorded = (~np.isnan(w["collab"])).any(1) if len(w["collab"]) else np.zeros(0, dtype=bool)
        has_record = (rows >= 0) & (recorded[rows.clip(min=0)] if len(recorded) else False)
        ancestor = np.full(len(x), -1, dtype=np.int64)
        for i, lineage in enumerate(tokens.ancestors):
            if not has_record[i]:
                ancestor[i] = next((row_of[a] for a in lineage if row_of.get(a, -1) >= 0 and recorded[row_of[a]]), -1)
        labels, protos = self._task_inputs(task, text_dim)
        scores = np.zeros(len(x), dtype=np.float32)
        if has_record.any():
            scores[has_record] = self._expected(self._readout(x[has_record], rows[has_record], labels, protos))
        unseen = ~has_record
        if unseen.any():
            scores[unseen] = self._cold_start(x[unseen, :HEAD_DIM], ancestor[unseen])
        inherits = unseen & (ancestor >= 0)
        if inherits.any():
            own = self._expected(self._readout(x[inherits], ancestor[inherits], labels, protos))
            neutral = self._expected(self._readout(x[inherits], ancestor[inherits], labels[:0], None))
            scores[inherits] = np.clip(scores[inherits] + (own - neutral), 0.0, 1.0)
        kinds = tuple(
            "records" if record else "lineage" if lineage else kind
            for kind, record, lineage in zip(evidence_of_head(x), has_record, ancestor >= 0, strict=True)
        )
        confidence = w["evidence_confidence"][[EVIDENCE_KINDS.index(k) for k in kinds]]
        counts = (~np.isnan(w["collab"])).sum(1)
        details = tuple(self._detail(tokens, i, k, rows[i], ancestor[i], counts) for i, k in enumerate(kinds))
        return Explained(
            scores=scores.astype(np.float64), evidence=kinds, confidence=confidence.astype(np.float64), details=details
        )

    def _task_inputs(self, task: Any, text_dim: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``TransferScorer.task_inputs``: ``(labels [C, D], prototypes [C_p, D_p] or None)``."""

        def part(value: np.ndarray | None, dim: int, name: str) -> np.ndarray:
            if value is None:
                return np.zeros((0, dim), dtype=np.float32)
            array = np.asarray(value, dtype=np.float32).reshape(-1, value.shape[-1])
            if array.shape[1] != dim:
                raise ScorerConfigError(
                    f"task '{task.description.name}' {name} have width {array.shape[1]} but the scorer expects {dim}; "
                    "encode the task with the scorer's encoders"
                )
            return array

        labels = part(task.label_embeddings, text_dim, "label embeddings")
        protos = part(task.prototypes, int(self.config.get("proto_dim", 384)), "prototypes")
        return labels, protos if len(protos) else None

    def _readout(self, x: np.ndarray, rows: np.ndarray, labels: np.ndarray, protos: np.ndarray | None) -> np.ndarray:
        """``TransferScorer.forward`` without a content path: the members' mean linear read-out of the pair
        features (``pair_features``)."""
        w, text_dim = self.weights, int(self.config.get("text_dim", 384))
        task_vec = _normalize(labels.mean(0)) if len(labels) else np.zeros(text_dim, dtype=np.float32)
        similarity = w["task_embeddings"] @ task_vec
        if protos is not None and w["task_prototypes"].any():
            with_samples = np.abs(w["task_prototypes"]).sum(1) > 0
            similarity = np.where(with_samples, w["task_prototypes"] @ _normalize(protos.mean(0)), similarity)
        known = rows >= 0
        index = rows.clip(min=0)
        own = _row_features(w["collab"], similarity)
        row_features = own[index] * known[:, None] if len(own) else np.zeros((len(x), 5), dtype=np.float32)
        sims = [x[:, text_slice(name, text_dim)] @ task_vec for name in ("label_embedding", "dataset_embedding")]
        if len(w["latent"]):
            latent = _latent_scores(w["latent"], w["task_latent"], _shared_records(w["collab"]), similarity)
            latent = latent[index] * known[:, None]
        else:
            latent = np.zeros((len(x), len(SIMILARITY_TEMPERATURES)), dtype=np.float32)
        pair = np.concatenate([row_features, np.stack(sims, axis=1), latent], axis=1).astype(np.float32)
        members = int(self.config.get("members", 1))
        out = [pair @ w[f"members.{m}.skip.weight"][0] + w[f"members.{m}.skip.bias"][0] for m in range(members)]
        return np.mean(out, axis=0)

    def _expected(self, scores: np.ndarray) -> np.ndarray:
        slope, intercept = self.weights["calibration"]
        return np.clip(slope * scores + intercept, 0.0, 1.0)

    def _cold_start(self, head: np.ndarray, ancestor: np.ndarray) -> np.ndarray:
        """``TransferScorer.cold_start``: the forest over the token head and the ancestor columns."""
        collab = self.weights["collab"]
        known = ancestor >= 0
        inherited = np.zeros(len(head), dtype=np.float32)
        if len(collab):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row's mean is NaN, as in torch.nanmean
                quality = np.nanmean(collab, axis=1)
            inherited = np.where(known, quality[ancestor.clip(min=0)], 0.0).astype(np.float32)
        inputs = np.concatenate([head, inherited[:, None], known.astype(np.float32)[:, None]], axis=1)
        return np.clip(self._forest(inputs), 0.0, 1.0)

    def _forest(self, x: np.ndarray) -> np.ndarray:
        """``hf_spider.scorer.forest.predict_forest``: every (tree, candidate) pair walks one level per step, in
        blocks of :data:`_BLOCK` candidates whose inputs stay in the CPU's cache."""
        w = self.weights
        trees, width = w["forest_feature"].shape
        if trees == 0 or len(x) == 0:
            return np.zeros(len(x), dtype=np.float32)
        shift = np.repeat(np.arange(trees) * width, width)
        flat = (
            w["forest_feature"].reshape(-1),
            w["forest_threshold"].reshape(-1),
            w["forest_left"].reshape(-1) + shift,
            w["forest_right"].reshape(-1) + shift,
        )
        values = w["forest_value"].reshape(-1)
        return np.concatenate(
            [_walk(flat, values, trees, width, x[start : start + _BLOCK]) for start in range(0, len(x), _BLOCK)]
        )

    def _detail(self, tokens: PTMTokens, index: int, kind: str, row: int, ancestor: int, counts: np.ndarray) -> str:
        """``hf_spider.scorer.explain._detail``: a one-line reason for a candidate's score."""
        facts = tokens.facts[index] if index < len(tokens.facts) else None
        return evidence_detail(kind, records=int(counts[row]), ancestor=self.model_ids[ancestor], facts=facts)


def _walk(
    flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    values: np.ndarray,
    trees: int,
    width: int,
    x: np.ndarray,
) -> np.ndarray:
    """``[N]`` mean leaf value of the trees for one block ``x [N, F]`` (``hf_spider.scorer.forest._walk``)."""
    feature, threshold, left, right = flat
    count = len(x)
    x_flat = np.ascontiguousarray(x.T).reshape(-1)  # feature f of candidate n at f * N + n
    column = feature.clip(min=0) * count
    candidate = np.tile(np.arange(count), trees)
    node = np.repeat(np.arange(trees) * width, count)

    def step(at: np.ndarray, of: np.ndarray) -> np.ndarray:
        return np.where(x_flat[column[at] + of] <= threshold[at], left[at], right[at])

    for _ in range(_DENSE_LEVELS):
        node = step(node, candidate)
    active = np.flatnonzero(feature[node] >= 0)
    while len(active):
        reached = step(node[active], candidate[active])
        node[active] = reached
        active = active[feature[reached] >= 0]
    return values[node].reshape(trees, count).mean(0)


def evidence_of_head(x: np.ndarray) -> list[str]:
    """Evidence kinds a model without records or seen ancestor gets from its token head ``x [N, in_dim]``
    (``facts`` / ``content`` / ``size``): ImageNet facts or a pre-training source, else an architecture family."""
    meta = x[:, metadata_slice()]
    facts = (meta[:, _METADATA["has_imagenet_top1"]] > 0) | (meta[:, _METADATA["has_pretraining"]] > 0)
    family = x[:, family_slice()].sum(1) > 0
    return ["facts" if f else "content" if c else "size" for f, c in zip(facts, family, strict=True)]


def _normalize(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def _row_features(table: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """``hf_spider.scorer.pair._row_features``: ``[K, 5]`` has-record, mean, mean square, similarity-weighted means."""
    known = ~np.isnan(table)
    values = np.nan_to_num(table) * known
    count = known.sum(1).astype(np.float32)
    means = [values.sum(1) / count.clip(min=1), (values**2).sum(1) / count.clip(min=1)]
    top = similarity.max() if len(similarity) else 0.0
    for temperature in SIMILARITY_TEMPERATURES:
        weights = np.exp((similarity - top) / temperature) * known
        means.append((values * weights).sum(1) / weights.sum(1).clip(min=1e-6))
    has = (count > 0).astype(np.float32)
    return np.stack([has, *(m * has for m in means)], axis=1).astype(np.float32)


def _latent_scores(model_x: np.ndarray, task_v: np.ndarray, known: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """``hf_spider.scorer.pair._latent_scores``: ``[M, temperatures]`` transfer-space scores for the task."""
    predicted = model_x[:, :1] + model_x[:, 1:] @ task_v[:, 1:].T
    top = similarity.max() if len(similarity) else 0.0
    columns = []
    for temperature in SIMILARITY_TEMPERATURES:
        weights = np.exp((similarity - top) / temperature) * known
        columns.append((predicted * weights).sum(1) / weights.sum(1).clip(min=1e-12))
    return np.stack(columns, axis=1).astype(np.float32)


def _shared_records(collab: np.ndarray) -> np.ndarray:
    """``hf_spider.scorer.pair._shared_records``: ``[M, T]`` whether a model and a task are connected through records
    (union-find over the recorded (model, task) pairs; the table is a few hundred by a few dozen)."""
    models, tasks = collab.shape
    parent = list(range(models + tasks))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for m, t in zip(*np.nonzero(~np.isnan(collab)), strict=True):
        a, b = find(int(m)), find(models + int(t))
        parent[max(a, b)] = min(a, b)
    labels = np.array([find(i) for i in range(models + tasks)])
    return labels[:models, None] == labels[None, models:]
