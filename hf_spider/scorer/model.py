"""The Model Spider scorer: a PTM token attends over a task's tokens and a head outputs a fitness score.

Reference: Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models Efficiently", NeurIPS 2023 (Sec. 3-4).
As in the paper, each candidate is a token, the task is a set of tokens (here: class prototypes, label-name
embeddings and statistics, any of them masked when missing) and a transformer-style attention produces the score.
Departures, each for the Hub setting:

* the *learned model token* of a model seen in training is its row of normalised accuracies on the training tasks (a
  collaborative signal), read through a task-similarity attention over the training tasks, and its vector in a
  Fennec-style transfer space factorised from those accuracies (:func:`hf_spider.rankers.fennec.factorise`), read
  against the task's similarity-weighted vector. The read-out is linear: a fixed prior (:data:`PRIOR_READOUT`) plus a
  correction learned listwise and pulled back to the prior (``TrainConfig.prior_strength``): learned freely on 9 to 12
  training lists per modality, it ranked held-out targets worse than the prior alone;
* the attention over the task tokens (the content path) adds a task-specific correction; it starts at zero and is
  trained only on request (``TrainConfig.content_path``): on 23 training targets without samples it did not help;
* a model never seen in training (almost every Hub model) is scored from what the Hub says about it: a regression
  forest (:mod:`hf_spider.scorer.forest`) reads the head of its PTM token (size, family, archi2vec, pre-training
  scale, ImageNet facts, head, language) and, for a model that descends from a seen one
  (:mod:`hf_spider.tokens.lineage`), its nearest seen ancestor's mean percentile, and predicts the model's mean
  accuracy percentile; trained on the seen models, so how much an ancestor's record carries over is learned;
* every score is an *expected percentile* in [0, 1]: seen models' read-outs are calibrated on the training lists, so
  a pool that mixes seen and unseen models ranks them on one scale, and each candidate says what its score rests on
  (:data:`hf_spider.outputs.shortlist.EVIDENCE_KINDS`) with a confidence measured in training;
* several independently seeded members are averaged (small data: 23 targets), stored in one ``model.safetensors``.

This module holds the network (ensemble members, buffers, Hub I/O and the calibrated read-out); what the read-out
sees of a model for a task is in :mod:`hf_spider.scorer.pair`, and how the paths combine into an explained score per
candidate in :mod:`hf_spider.scorer.explain`.

Hub I/O comes from :class:`huggingface_hub.PyTorchModelHubMixin`: the JSON-able ``__init__`` arguments become
``config.json``, the weights ``model.safetensors``, and the class arguments the model card.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from ..errors import ScorerConfigError
from ..outputs.shortlist import EVIDENCE_KINDS
from ..rankers.base import Explained
from ..tokens.ptm import HEAD_DIM, PTM_SCHEMA_VERSION, TEXT_PARTS, PTMTokens
from .card import MODEL_CARD_TEMPLATE
from .checks import (
    CONFIG_KEYS,
    SCORER_FILES,
    SCORER_MODEL_TYPE,
    check_hub_sizes,
    check_token_layout,
    check_values,
    check_weights_header,
    expected_tensors,
    hub_errors,
    loading,
    read_config,
)
from .explain import explain_tokens
from .forest import predict_forest
from .inputs import cold_start_features, task_inputs
from .pair import PAIR_FEATURES, LatentTables, compute_pair_features, hidden_tasks, prior_readout

if TYPE_CHECKING:
    from ..hub.records import ModelRecord
    from ..tokens.task import TaskTokens

logger = logging.getLogger(__name__)

_NEG = -1e4  # additive attention mask; finite so an all-masked row cannot produce NaN


class _Member(nn.Module):
    """One ensemble member: PTM encoder, task pooling, cross-attention and head."""

    def __init__(self, in_dim: int, text_dim: int, proto_dim: int, stats_dim: int, hidden: int, pooled: int) -> None:
        super().__init__()
        self.ptm = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(0.2), nn.Linear(hidden, hidden))
        self.label_proj = nn.Linear(text_dim, hidden)
        self.proto_proj = nn.Linear(proto_dim, hidden)
        self.stats_proj = nn.Linear(stats_dim, hidden)
        self.kind = nn.Parameter(torch.zeros(4, hidden))  # token-type embeddings: label, prototype, stats, null
        self.queries = nn.Parameter(torch.randn(pooled, hidden) * hidden**-0.5)
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, hidden, bias=False)
        self.head = nn.Sequential(nn.Linear(3 * hidden + len(PAIR_FEATURES), hidden), nn.GELU(), nn.Dropout(0.2))
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.out.weight)  # start as the linear read-out alone; the content path grows from zero
        nn.init.zeros_(self.out.bias)
        self.skip = nn.Linear(len(PAIR_FEATURES), 1)  # keeps the collaborative signal one linear step from the score
        with torch.no_grad():  # the read-out starts from the prior ranking; training learns a correction of it
            self.skip.weight.copy_(prior_readout())

    @property
    def content_trained(self) -> bool:
        """Whether the content path can move a score (its output layer starts at zero and stays there untrained)."""
        return bool(self.out.weight.abs().sum() > 0 or self.out.bias.abs().sum() > 0)

    def task_summary(
        self, labels: torch.Tensor, protos: torch.Tensor, stats: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``[P + 1, H]`` pooled task tokens; ``mask`` ``[C_l + C_p + 1]`` is True for tokens that exist."""
        tokens = torch.cat(
            [
                self.label_proj(labels) + self.kind[0],  # [C_l, H]
                self.proto_proj(protos) + self.kind[1],  # [C_p, H]
                self.stats_proj(stats)[None] + self.kind[2],  # [1, H]
            ]
        )
        logits = self.queries @ tokens.T / tokens.shape[1] ** 0.5  # [P, C]
        logits = logits + (~mask).float() * _NEG
        pooled = torch.softmax(logits, dim=-1) @ tokens  # [P, H]
        return torch.cat([pooled, self.kind[3][None]])  # the null token keeps attention defined without task tokens

    def forward(self, x: torch.Tensor, pair: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        return self.score_encoded(self.ptm(x), pair, summary)

    def score_encoded(self, h: torch.Tensor, pair: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        """``[N]`` scores from encoded PTM tokens ``h`` ``[N, H]`` (training encodes each model once per step): the
        linear read-out of the learned token plus the content path's task-specific correction (zero until trained)."""
        attn = torch.softmax(self.q(h) @ self.k(summary).T / h.shape[1] ** 0.5, dim=-1)  # [N, P + 1]
        ctx = attn @ self.v(summary)  # [N, H]
        content = self.out(self.head(torch.cat([h, ctx, h * ctx, pair], dim=1))).squeeze(1)
        return self.skip(pair).squeeze(1) + content


class TransferScorer(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="hf_spider",
    tags=["model-selection", "model-spider", "transferability"],
    license="apache-2.0",
    model_card_template=MODEL_CARD_TEMPLATE,
    repo_url="https://github.com/hf-spider/hf-spider",
):
    name: str
    collab: torch.Tensor  # buffers, declared for the type checker
    task_embeddings: torch.Tensor
    task_prototypes: torch.Tensor
    text_basis: torch.Tensor
    latent: torch.Tensor
    task_latent: torch.Tensor
    calibration: torch.Tensor
    evidence_confidence: torch.Tensor
    forest_feature: torch.Tensor
    forest_threshold: torch.Tensor
    forest_left: torch.Tensor
    forest_right: torch.Tensor
    forest_value: torch.Tensor
    """PTM tokens + task tokens -> expected accuracy percentiles (higher = better to fine-tune), one pass per task.

    It is a :class:`~hf_spider.rankers.base.Ranker` itself (``name``, ``score(task, candidates)``, and ``explain``
    for what each score rests on), so the pipeline and ``rank()`` take it directly; :meth:`score_tokens` skips
    tokenising when the PTM tokens are already built.

    Args:
        in_dim: width of a PTM token (:func:`hf_spider.tokens.ptm.token_dim`).
        text_dim: width of the text encoder (label-name embeddings).
        proto_dim: width of class prototypes (the image or text sample encoder).
        stats_dim: length of the statistics token.
        hidden: width of the attention and head.
        pooled: learned queries that pool the task tokens.
        text_rank: each text part of a PTM token is projected on its ``text_rank`` principal directions in the
            training models (:meth:`fit_text_basis`) before the content path: 23 tasks cannot fit 3 x 384 inputs.
        latent_rank: dimension of the transfer space of the learned model tokens (Fennec's ``u_m``).
        members: independently seeded members averaged into the read-out.
        model_ids: repo ids of the models seen in training (rows of the collaborative table).
        train_tasks: names of the training tasks (columns of the collaborative table).
        forest_trees / forest_nodes: shape of the regression forest that scores models without records
            (:mod:`hf_spider.scorer.forest`); 0 trees scores them all at the training models' mean.
        estimators: forward-pass estimators the scorer expects alongside (none yet; kept for the pipeline's notes).
        feature_schema_version: the PTM token schema the scorer was trained with.
        text_encoder: Hub id of the tokens' text encoder (``None``: ``hf_spider.constants.DEFAULT_TEXT_ENCODER``).
        sample_encoders: the encoder of each modality's class prototypes in training (``None``: the training tasks
            had no samples, and a query task's samples are not read, see :func:`hf_spider.ranking.read_task`).
        summary: Markdown for the model card (training data, benchmark figures); kept in ``config.json`` so every
            save and push regenerates the same card.

    Example:
        >>> scorer = TransferScorer(in_dim=token_dim(8), text_dim=8, proto_dim=8)
        >>> scorer.device
        device(type='cpu')
    """

    def __init__(
        self,
        *,
        in_dim: int,
        text_dim: int = 384,
        proto_dim: int = 384,
        stats_dim: int = 5,
        hidden: int = 48,
        pooled: int = 4,
        members: int = 1,
        text_rank: int = 16,
        latent_rank: int = 4,
        model_ids: list[str] | None = None,
        train_tasks: list[str] | None = None,
        forest_trees: int = 0,
        forest_nodes: int = 1,
        estimators: list[str] | None = None,
        feature_schema_version: int = PTM_SCHEMA_VERSION,
        text_encoder: str | None = None,
        sample_encoders: dict[str, str] | None = None,
        summary: str = "",
    ) -> None:
        super().__init__()
        self.name = "hf_spider"
        check_token_layout(feature_schema_version, in_dim, text_dim)
        self.in_dim, self.text_dim, self.proto_dim, self.stats_dim = in_dim, text_dim, proto_dim, stats_dim
        self.text_rank = text_rank
        self.latent_rank = latent_rank
        self.model_ids = list(model_ids or [])
        self.train_tasks = list(train_tasks or [])
        self.estimators = list(estimators or [])
        self.feature_schema_version = feature_schema_version
        self.text_encoder = text_encoder
        self.sample_encoders = dict(sample_encoders) if sample_encoders else None
        self.summary = summary
        self._row = {m: i for i, m in enumerate(self.model_ids)}
        self.members = nn.ModuleList(
            _Member(HEAD_DIM + len(TEXT_PARTS) * text_rank, text_dim, proto_dim, stats_dim, hidden, pooled)
            for _ in range(members)
        )
        # Principal directions of each text part (filled by fit_text_basis; the first coordinates until then).
        basis = torch.eye(text_dim, text_rank).expand(len(TEXT_PARTS), text_dim, text_rank)
        self.register_buffer("text_basis", basis.clone())
        # The learned model tokens: percentile rank of each seen model's accuracy on each training task (NaN = no
        # record; ranks, unlike min-max scaling, are not squashed by one failed run), and the label-name embedding
        # of each training task, for the task-similarity attention.
        self.register_buffer("collab", torch.full((len(self.model_ids), len(self.train_tasks)), float("nan")))
        self.register_buffer("task_embeddings", torch.zeros(len(self.train_tasks), text_dim))
        # The normalised mean class prototype of each training task that has samples (zeros where it has none): a
        # task with samples is compared with them on what its samples look like, not only on what its classes are named.
        self.register_buffer("task_prototypes", torch.zeros(len(self.train_tasks), proto_dim))
        # Fennec's transfer space (filled by training, see hf_spider.rankers.fennec.factorise): (b_m, u_m) of each seen
        # model and (c_t, v_t) of each training task. A task's vector is the similarity-weighted mean of the training
        # tasks' vectors.
        self.register_buffer("latent", torch.zeros(len(self.model_ids), latent_rank + 1))
        self.register_buffer("task_latent", torch.zeros(len(self.train_tasks), latent_rank + 1))
        # (slope, intercept) from a read-out score to the expected percentile, fitted on the training lists.
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))
        # Rank correlation of each evidence kind's estimates with the truth, measured in training (EVIDENCE_KINDS).
        self.register_buffer("evidence_confidence", torch.zeros(len(EVIDENCE_KINDS)))
        # The regression forest over cold_start_features that scores models without records (padding: leaves of 0).
        shape = (forest_trees, forest_nodes)
        self.register_buffer("forest_feature", torch.full(shape, -1, dtype=torch.long))
        self.register_buffer("forest_threshold", torch.zeros(shape))
        self.register_buffer("forest_left", torch.zeros(shape, dtype=torch.long))
        self.register_buffer("forest_right", torch.zeros(shape, dtype=torch.long))
        self.register_buffer("forest_value", torch.zeros(shape))

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> TransferScorer:
        """The mixin's ``from_pretrained`` (a local folder, or a Hub repo through ``hf_hub_download``), with the
        scorer's files checked before they are used (:mod:`hf_spider.scorer.checks`).

        The mixin reads ``config.json`` without a bound and goes on without it when the Hub answers an error, so here
        it is fetched and read by :func:`~hf_spider.scorer.checks.read_config` (capped, every key checked, the tensors
        it describes within bounds) before the mixin's :meth:`_from_pretrained` builds the network and loads the
        weights (:meth:`_load_as_safetensor` checks them). From the Hub, the sizes of both files are asked first, and
        one over its cap is not downloaded (:func:`~hf_spider.scorer.checks.check_hub_sizes`). ``model_kwargs``
        override config keys, as in the mixin.

        Raises:
            ScorerConfigError: one line naming the scorer, what is wrong with it (no such folder, repo, revision or
                file; a file that is not what a scorer saves) and the fix.
        """
        source = str(pretrained_model_name_or_path)
        with loading(source):
            if Path(source).is_dir():
                config_file = Path(source) / "config.json"
            else:
                from huggingface_hub import hf_hub_download

                hub: dict[str, Any] = {
                    "revision": revision,
                    "cache_dir": cache_dir,
                    "force_download": force_download,
                    "token": token,
                    "local_files_only": local_files_only,
                }
                with hub_errors(source, " or ".join(SCORER_FILES), revision):
                    check_hub_sizes(source, SCORER_FILES, required=True, **hub)
                with hub_errors(source, "config.json", revision):
                    config_file = Path(hf_hub_download(source, "config.json", **hub))
            config = read_config(config_file)
            kwargs = {key: config[key] for key in CONFIG_KEYS if key in config} | model_kwargs
            with hub_errors(source, "model.safetensors", revision):
                return cls._from_pretrained(
                    model_id=source,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    local_files_only=local_files_only,
                    token=token,
                    **kwargs,
                )

    @classmethod
    def _from_pretrained(cls, *, model_id: str, **kwargs: Any) -> TransferScorer:
        """The mixin's loader, strict about weight names, and quiet: it ``print``s for local folders; we log."""
        kwargs.setdefault("strict", True)
        with contextlib.redirect_stdout(io.StringIO()):
            scorer = super()._from_pretrained(model_id=model_id, **kwargs)
        logger.info("loaded scorer from %s", model_id)
        return cast(TransferScorer, scorer)

    @classmethod
    def _load_as_safetensor(cls, model: Any, model_file: str, map_location: str, strict: bool) -> Any:
        """The mixin's safetensors loading, between two checks: the file's header must name exactly the network's
        tensors with their shapes and dtypes before a value is read, and every value read must be finite and in range
        (:func:`~hf_spider.scorer.checks.check_weights_header`, :func:`~hf_spider.scorer.checks.check_values`).

        Raises:
            ScorerConfigError: the weights were saved by a scorer of another layout (an older hf-spider), or hold
                values no training writes.
        """
        check_weights_header(Path(model_file), expected_tensors(model._hub_mixin_config))
        loaded = super()._load_as_safetensor(model, model_file, map_location, strict)
        check_values({name: t.detach().cpu().numpy() for name, t in loaded.state_dict().items()})
        return loaded

    @classmethod
    def _load_as_pickle(cls, model: Any, model_file: str, map_location: str, strict: bool) -> Any:
        """Refused: the mixin falls back to a pickled ``pytorch_model.bin`` when a Hub repo has no
        ``model.safetensors``, and Hub content is untrusted (a pickle can run code; hf-spider reads safetensors only).

        Raises:
            ScorerConfigError: always, naming the file.
        """
        raise ScorerConfigError(
            f"the scorer repo holds no model.safetensors, only pickled weights ({Path(model_file).name}), which "
            "hf-spider never loads; save the scorer with save_pretrained or push_to_hub (they write safetensors)"
        )

    def _save_pretrained(self, save_directory: Path) -> None:
        """Weights via the mixin, then ``config.json`` with the ``model_type`` that transformers' Auto classes read.

        The mixin keeps a ``config.json`` that ``_save_pretrained`` wrote; extra keys are ignored when loading.
        """
        super()._save_pretrained(save_directory)
        config = dict(self._hub_mixin_config or {})  # type: ignore[arg-type]
        (save_directory / "config.json").write_text(
            json.dumps({**config, "model_type": SCORER_MODEL_TYPE}, sort_keys=True, indent=2)
        )

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:  # type: ignore[override]
        """The mixin's push, safe to retry: a replayed commit is never a second, empty one (see ``hub/push.py``)."""
        from ..hub.push import push_model

        return push_model(self, repo_id, **kwargs)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The mixin's card, with this scorer's training and benchmark summary filled in."""
        kwargs.setdefault("model_summary", self.summary)
        return super().generate_model_card(*args, **kwargs)

    @property
    def member_modules(self) -> list[_Member]:
        """The ensemble members, typed."""
        return [cast(_Member, m) for m in self.members]

    @property
    def device(self) -> torch.device:
        """Where the weights live (``transformers`` pipelines read ``model.device``; a bare ``nn.Module`` has none)."""
        return next(self.parameters()).device

    def check_tokens(self, tokens: PTMTokens) -> None:
        """Raise :class:`ScorerConfigError` if ``tokens`` were built differently from the training tokens."""
        if tokens.schema_version != self.feature_schema_version or tokens.features.shape[1] != self.in_dim:
            raise ScorerConfigError(
                f"PTM tokens (schema {tokens.schema_version}, width {tokens.features.shape[1]}) do not match this "
                f"scorer (schema {self.feature_schema_version}, width {self.in_dim}); rebuild them with "
                "hf_spider.tokens.ptm.ptm_tokens and the scorer's text encoder, or retrain the scorer"
            )

    def task_inputs(self, task: TaskTokens) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(labels, prototypes, statistics, mask)`` of ``task`` at this scorer's widths (``inputs.task_inputs``)."""
        return task_inputs(task, self.text_dim, self.proto_dim, self.stats_dim, device=self.device)

    def pair_features(
        self,
        x: torch.Tensor,
        rows: torch.Tensor,
        labels: torch.Tensor,
        protos: torch.Tensor | None = None,
        *,
        exclude_task: str | None = None,
        latent: LatentTables | None = None,
    ) -> torch.Tensor:
        """``[N, len(PAIR_FEATURES)]``: each seen model's learned token read for this task, and label-name similarities
        (:func:`~hf_spider.scorer.pair.compute_pair_features` on this scorer's tables).

        Args:
            x: ``[N, in_dim]`` PTM tokens (their label and dataset embeddings give the similarities).
            rows: ``[N]`` row of each candidate in the collaborative table (``-1``: scored by :meth:`cold_start`).
            labels: ``[C, D]`` the task's label-name embeddings (may be empty).
            protos: ``[C_p, D_p]`` the task's class prototypes (``None`` or empty: it is known by its labels only).
            exclude_task: a training task whose group's columns are hidden (training on that task: the task and its
                siblings sampled from the same dataset are left out, see :func:`~hf_spider.scorer.pair.task_group`).
            latent: the transfer space to read instead of the scorer's own (training passes one factorised without
                ``exclude_task``, so a task never sees a space fitted to its own records).
        """
        return compute_pair_features(
            x,
            rows,
            labels,
            protos,
            collab=self.collab,
            task_embeddings=self.task_embeddings,
            task_prototypes=self.task_prototypes,
            hidden=hidden_tasks(self.train_tasks, exclude_task, self.device),
            latent=latent or self.latent_tables(),
        )

    def latent_tables(self) -> LatentTables:
        """The scorer's transfer space (its buffers)."""
        return LatentTables(model_x=self.latent, task_v=self.task_latent)

    def compress(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, head + parts * text_rank]``: PTM tokens with each text part projected on its basis."""
        text = x[:, HEAD_DIM:].reshape(len(x), len(TEXT_PARTS), self.text_dim)
        projected = torch.einsum("npd,pdr->npr", text, self.text_basis).reshape(len(x), -1)
        return torch.cat([x[:, :HEAD_DIM], projected], dim=1)

    @torch.no_grad()
    def fit_text_basis(self, x: torch.Tensor) -> None:
        """Set each text part's basis to the top right-singular vectors of the training models' embeddings.

        Uncentred SVD over the models that have the part (zero rows mean "missing"); deterministic on one machine.
        """
        text = x[:, HEAD_DIM:].reshape(len(x), len(TEXT_PARTS), self.text_dim)
        for part in range(len(TEXT_PARTS)):
            rows = text[:, part][text[:, part].norm(dim=1) > 0]  # [M_p, D]
            basis = torch.zeros(self.text_dim, self.text_rank)
            if len(rows):
                directions = torch.linalg.svd(rows.double(), full_matrices=False).Vh[: self.text_rank].T.float()
                basis[:, : directions.shape[1]] = directions
            self.text_basis[part] = basis

    def forward(
        self,
        x: torch.Tensor,
        rows: torch.Tensor,
        labels: torch.Tensor,
        protos: torch.Tensor,
        stats: torch.Tensor,
        mask: torch.Tensor,
        *,
        exclude_task: str | None = None,
        latent: LatentTables | None = None,
    ) -> torch.Tensor:
        """``[N]`` read-out scores of ``N`` seen candidates of one task (tensors as from :meth:`task_inputs`); the
        uncalibrated scale that training ranks with (:meth:`expected` maps it to a percentile)."""
        pair = self.pair_features(x, rows, labels, protos, exclude_task=exclude_task, latent=latent)
        members = self.member_modules
        if not any(m.content_trained for m in members):  # the read-out alone: no need to run the attention
            return torch.stack([m.skip(pair).squeeze(1) for m in members]).mean(0)
        compressed = self.compress(x)
        return torch.stack([m(compressed, pair, m.task_summary(labels, protos, stats, mask)) for m in members]).mean(0)

    def expected(self, scores: torch.Tensor) -> torch.Tensor:
        """Read-out scores mapped to expected accuracy percentiles in [0, 1] (the calibration fitted in training)."""
        return (self.calibration[0] * scores + self.calibration[1]).clamp(0.0, 1.0)

    def cold_start(self, x: torch.Tensor, ancestor: torch.Tensor) -> torch.Tensor:
        """``[N]`` expected percentile of models without records, from the head of their PTM tokens ``x`` and the
        table row of their nearest seen ancestor (``ancestor [N]``, ``-1`` for none)."""
        known = ancestor >= 0
        quality = torch.nanmean(self.collab, dim=1) if len(self.collab) else x.new_zeros(0)
        inherited = (
            torch.where(known, quality[ancestor.clamp(min=0)], torch.zeros_like(x[:, 0]))
            if len(quality)
            else x.new_zeros(len(x))
        )
        inputs = cold_start_features(x[:, :HEAD_DIM], inherited, known.float())
        arrays = (self.forest_feature, self.forest_threshold, self.forest_left, self.forest_right, self.forest_value)
        return predict_forest(*arrays, inputs).clamp(0.0, 1.0)

    def rows_of(self, model_ids: Sequence[str]) -> torch.Tensor:
        """``[N]`` collaborative-table row per model id, ``-1`` for models never seen in training."""
        rows = np.fromiter((self.row_of(m) for m in model_ids), dtype=np.int64, count=len(model_ids))
        return torch.from_numpy(rows).to(self.device)

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """The :class:`~hf_spider.rankers.base.Ranker` interface: ``[len(candidates)]`` expected percentiles."""
        return self.explain(task, candidates).scores

    def explain(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> Explained:
        """Expected percentiles of ``candidates`` for ``task`` and what each rests on (see :meth:`explain_tokens`)."""
        from ..tokens.ptm import ptm_tokens

        return self.explain_tokens(ptm_tokens(candidates, text_encoder=self.text_encoder), task)

    def score_tokens(self, tokens: PTMTokens, task: TaskTokens) -> np.ndarray:
        """``[N]`` expected percentile of each tokenised candidate (see :meth:`explain_tokens`)."""
        return self.explain_tokens(tokens, task).scores

    def explain_tokens(self, tokens: PTMTokens, task: TaskTokens) -> Explained:
        """Expected percentile of each tokenised candidate, with its evidence, confidence and a one-line reason
        (:func:`hf_spider.scorer.explain.explain_tokens`)."""
        return explain_tokens(self, tokens, task)

    def row_of(self, model_id: str) -> int:
        """Collaborative-table row of ``model_id``, ``-1`` for a model never seen in training."""
        return self._row.get(model_id, -1)


__all__ = ["TransferScorer"]
