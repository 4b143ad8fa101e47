"""The Model Spider scorer: a PTM token attends over a task's tokens and a head outputs a fitness score.

Reference: Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models Efficiently", NeurIPS 2023 (Sec. 3-4).
As in the paper, each candidate is a token, the task is a set of tokens (here: class prototypes, label-name
embeddings and statistics, any of them masked when missing) and a transformer-style attention produces the score.
Departures, each for the Hub setting:

* the task side is first pooled by a few learned queries, so ranking N candidates costs O(N), not O(N x classes),
  and is computed once per task;
* the *learned model token* is the model's row of normalised accuracies on the training tasks (a collaborative
  signal), read through a task-similarity attention over the training tasks; unseen models have none and fall back
  to their content token, which training teaches by hiding that row for a random part of the models;
* several independently seeded members are averaged (small data: 23 targets), stored in one ``model.safetensors``.

Hub I/O comes from :class:`huggingface_hub.PyTorchModelHubMixin`: the JSON-able ``__init__`` arguments become
``config.json``, the weights ``model.safetensors``, and the class arguments the model card.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from ..errors import ScorerConfigError
from ..tokens.ptm import FAMILY_BUCKETS, PTM_SCHEMA_VERSION, SCALAR_NAMES, PTMTokens, text_slice, token_dim

if TYPE_CHECKING:
    from ..hub.records import ModelRecord
    from ..tokens.task import TaskTokens

logger = logging.getLogger(__name__)

#: Temperatures of the task-similarity attention over training tasks (sharp = nearest tasks, flat = plain mean).
SIMILARITY_TEMPERATURES = (0.05, 0.2)
#: Per-candidate scalar features the head sees besides the tokens (see :meth:`TransferScorer.pair_features`).
PAIR_FEATURES = (
    "seen",
    "collab_mean",
    "collab_square",
    "collab_near",
    "collab_mid",
    "log_count",
    "family_mean",
    "has_family",
    "label_sim",
    "dataset_sim",
)
_NEG = -1e4  # additive attention mask; finite so an all-masked row cannot produce NaN

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# hf-spider default scorer (Model Spider)

Ranks pre-trained Hub models for a classification task **without a forward pass of any candidate**: each model's
content token (architecture family, size, label names, training datasets, card results) attends over the task's tokens
(label-name embeddings, class prototypes when samples exist, statistics) and outputs a fitness score. Models seen in
training also carry their recorded fine-tuning results on the training tasks (Model Spider's learned model token).

Use it with `hf-spider rank` or `hf_spider.rankers.get_ranker("spider")`; load it with
`TransferScorer.from_pretrained(path_or_repo_id)`. Rebuild it with `python scripts/train_default_scorer.py`.

{{ model_summary }}

## Limitations
- Trained on 23 TransferGraph targets (13 image, 10 text): classification only, small data; an exotic task gets
  a ranking close to the collaborative prior of the training records.
- Scores are comparable within one task only; the ranking does not replace re-ranking the top-k with forward passes.
- Models never seen in training are ranked from their content token alone, which is weak: in the cold-start
  benchmark it only matches the size prior, and falls well below the family-mean collaborative prior on text.

Code: https://github.com/hf-spider/hf-spider
"""


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
        """``[N]`` scores from encoded PTM tokens ``h`` ``[N, H]`` (training encodes each model once per step)."""
        attn = torch.softmax(self.q(h) @ self.k(summary).T / h.shape[1] ** 0.5, dim=-1)  # [N, P + 1]
        ctx = attn @ self.v(summary)  # [N, H]
        content = self.out(self.head(torch.cat([h, ctx, h * ctx, pair], dim=1))).squeeze(1)
        unseen = 1.0 - pair[:, PAIR_FEATURES.index("seen")]
        # Seen models are scored by their learned token (read linearly); the content path speaks for unseen ones only.
        return self.skip(pair).squeeze(1) + unseen * content


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
    families: torch.Tensor
    """PTM tokens + task tokens -> fitness scores (higher = better to fine-tune), one batched pass per task.

    It is a :class:`~hf_spider.rankers.base.Ranker` itself (``name``, ``score(task, candidates)``), so the pipeline and
    ``rank()`` take it directly; :meth:`score_tokens` skips tokenising when the PTM tokens are already built.

    Args:
        in_dim: width of a PTM token (:func:`hf_spider.tokens.ptm.token_dim`).
        text_dim: width of the text encoder (label-name embeddings).
        proto_dim: width of class prototypes (the image or text sample encoder).
        stats_dim: length of the statistics token.
        hidden: width of the attention and head.
        pooled: learned queries that pool the task tokens.
        members: independently seeded members averaged into the score.
        model_ids: repo ids of the models seen in training (rows of the collaborative table).
        train_tasks: names of the training tasks (columns of the collaborative table).
        estimators: forward-pass estimators the scorer expects alongside (none yet; kept for the pipeline's notes).
        feature_schema_version: the PTM token schema the scorer was trained with.
        text_encoder: Hub id of the tokens' text encoder (``None``: ``hf_spider.constants.DEFAULT_TEXT_ENCODER``).
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
        model_ids: list[str] | None = None,
        train_tasks: list[str] | None = None,
        estimators: list[str] | None = None,
        feature_schema_version: int = PTM_SCHEMA_VERSION,
        text_encoder: str | None = None,
        summary: str = "",
    ) -> None:
        super().__init__()
        self.name = "hf_spider"
        if in_dim != token_dim(text_dim):
            raise ScorerConfigError(
                f"in_dim={in_dim} does not match text_dim={text_dim} (expected {token_dim(text_dim)}); "
                "build the config from hf_spider.tokens.ptm.token_dim(text_dim)"
            )
        self.in_dim, self.text_dim, self.proto_dim, self.stats_dim = in_dim, text_dim, proto_dim, stats_dim
        self.model_ids = list(model_ids or [])
        self.train_tasks = list(train_tasks or [])
        self.estimators = list(estimators or [])
        self.feature_schema_version = feature_schema_version
        self.text_encoder = text_encoder
        self.summary = summary
        self._row = {m: i for i, m in enumerate(self.model_ids)}
        self.members = nn.ModuleList(
            _Member(in_dim, text_dim, proto_dim, stats_dim, hidden, pooled) for _ in range(members)
        )
        # The learned model tokens: percentile rank of each seen model's accuracy on each training task (NaN = no
        # record; ranks, unlike min-max scaling, are not squashed by one failed run), and the label-name embedding
        # of each training task, for the task-similarity attention.
        self.register_buffer("collab", torch.full((len(self.model_ids), len(self.train_tasks)), float("nan")))
        self.register_buffer("task_embeddings", torch.zeros(len(self.train_tasks), text_dim))
        # Architecture-family bucket (one-hot) of each seen model: unseen models inherit their family's record.
        self.register_buffer("families", torch.zeros(len(self.model_ids), FAMILY_BUCKETS))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, **kwargs: Any) -> TransferScorer:
        """The mixin's loader, strict about weight names, and quiet: it ``print``s for local folders; we log."""
        kwargs.setdefault("strict", True)
        with contextlib.redirect_stdout(io.StringIO()):
            scorer = super()._from_pretrained(model_id=model_id, **kwargs)
        logger.info("loaded scorer from %s", model_id)
        return cast(TransferScorer, scorer)

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
        """``(labels [C_l, D], prototypes [C_p, D_p], statistics [S], mask [C_l + C_p + 1])``; missing parts masked."""
        device = self.device

        def part(value: np.ndarray | None, dim: int, name: str) -> torch.Tensor:
            if value is None:
                return torch.zeros(0, dim, device=device)
            array = np.asarray(value, dtype=np.float32).reshape(-1, value.shape[-1])
            if array.shape[1] != dim:
                raise ScorerConfigError(
                    f"task '{task.description.name}' {name} have width {array.shape[1]} but the scorer expects {dim}; "
                    "encode the task with the scorer's encoders"
                )
            return torch.from_numpy(array).to(device)

        labels = part(task.label_embeddings, self.text_dim, "label embeddings")
        protos = part(task.prototypes, self.proto_dim, "prototypes")
        stats = torch.zeros(self.stats_dim, device=device)
        if task.statistics is not None:
            stats = part(task.statistics, self.stats_dim, "statistics")[0]
        mask = torch.cat(
            [
                torch.ones(len(labels) + len(protos), dtype=torch.bool, device=device),
                torch.tensor([task.statistics is not None], device=device),
            ]
        )
        return labels, protos, stats, mask

    def pair_features(
        self,
        x: torch.Tensor,
        rows: torch.Tensor,
        labels: torch.Tensor,
        *,
        exclude_task: str | None = None,
        exclude_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[N, len(PAIR_FEATURES)]``: the collaborative signal read for this task, and label-name similarities.

        Args:
            x: ``[N, in_dim]`` PTM tokens.
            rows: ``[N]`` row of each candidate in the collaborative table, ``-1`` for unseen models.
            labels: ``[C, D]`` the task's label-name embeddings (may be empty).
            exclude_task: a training task whose column is hidden (training on that task: leave-one-out).
            exclude_rows: ``[N]`` table row whose record must not count in the candidate's family mean (training
                plays a seen model as unseen: its own record would leak in), ``-1`` for none.
        """
        n = x.shape[0]
        task_vec = nn.functional.normalize(labels.mean(0), dim=0) if len(labels) else None
        collab = self.collab
        if exclude_task is not None and exclude_task in self.train_tasks:
            collab = collab.clone()
            collab[:, self.train_tasks.index(exclude_task)] = float("nan")
        seen = rows >= 0
        if len(self.model_ids):
            table = collab[rows.clamp(min=0)]  # [N, T]
        else:  # a scorer that saw no model: everyone is unseen
            table = collab.new_full((n, len(self.train_tasks)), float("nan"))
        known = ~torch.isnan(table) & seen[:, None]
        values = torch.nan_to_num(table) * known
        count = known.sum(1).float()
        means = [values.sum(1) / count.clamp(min=1), (values**2).sum(1) / count.clamp(min=1)]
        similarity = (
            self.task_embeddings @ task_vec
            if task_vec is not None
            else torch.zeros(len(self.train_tasks), device=x.device)
        )
        top = similarity.max() if len(similarity) else similarity.new_zeros(())  # shift for a stable exp
        for temperature in SIMILARITY_TEMPERATURES:
            weights = torch.exp((similarity - top) / temperature) * known  # [N, T]
            means.append((values * weights).sum(1) / weights.sum(1).clamp(min=1e-6))
        has = (count > 0).float()
        sims = []
        for name in ("label_embedding", "dataset_embedding"):
            emb = x[:, text_slice(name, self.text_dim)]
            sims.append(emb @ task_vec if task_vec is not None else torch.zeros(n, device=x.device))
        family_mean, has_family = self._family_prior(x, collab, exclude_rows)
        return torch.stack(
            [has, *(m * has for m in means), torch.log1p(count) / 3.0, family_mean, has_family, *sims], dim=1
        )  # [N, len(PAIR_FEATURES)]

    def _family_prior(
        self, x: torch.Tensor, collab: torch.Tensor, exclude_rows: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``([N], [N])``: mean record of the seen models of each candidate's family, and whether there is one."""
        start = len(SCALAR_NAMES)
        family = x[:, start : start + FAMILY_BUCKETS]  # [N, B] one-hot (zeros: family unknown)
        known = ~torch.isnan(collab)
        row_count = known.sum(1).float()
        row_mean = torch.nan_to_num(collab).sum(1) / row_count.clamp(min=1)  # [M]
        row_has = (row_count > 0).float()
        total = family @ (self.families.T @ (row_mean * row_has))  # [N]
        count = family @ (self.families.T @ row_has)  # [N]
        if exclude_rows is not None and len(self.model_ids):
            own = exclude_rows >= 0
            index = exclude_rows.clamp(min=0)
            total = total - own * row_mean[index] * row_has[index]
            count = count - own * row_has[index]
        has = (count > 0.5).float()
        return total / count.clamp(min=1) * has, has

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
        hide_collab: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[N]`` scores for ``N`` candidates of one task (tensors as from :meth:`task_inputs`).

        ``hide_collab`` (``[N]`` bool) treats those candidates as unseen: how training teaches content-only scoring.
        """
        if hide_collab is not None:
            rows = torch.where(hide_collab, torch.full_like(rows, -1), rows)
        pair = self.pair_features(x, rows, labels, exclude_task=exclude_task)
        scores = [m(x, pair, m.task_summary(labels, protos, stats, mask)) for m in self.member_modules]
        return torch.stack(scores).mean(0)

    def rows_of(self, model_ids: tuple[str, ...] | list[str]) -> torch.Tensor:
        """``[N]`` collaborative-table row per model id, ``-1`` for models not seen in training."""
        return torch.tensor([self._row.get(m, -1) for m in model_ids], dtype=torch.long, device=self.device)

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """The :class:`~hf_spider.rankers.base.Ranker` interface: ``[len(candidates)]`` fitness scores for ``task``."""
        from ..tokens.ptm import ptm_tokens

        return self.score_tokens(ptm_tokens(candidates, text_encoder=self.text_encoder), task)

    @torch.no_grad()
    def score_tokens(self, tokens: PTMTokens, task: TaskTokens, *, batch_size: int = 262_144) -> np.ndarray:
        """``[N]`` fitness of each tokenised candidate: the task side once, the candidates in large batches."""
        self.check_tokens(tokens)
        was_training = self.training
        self.eval()
        labels, protos, stats, mask = self.task_inputs(task)
        members = self.member_modules
        summaries = [m.task_summary(labels, protos, stats, mask) for m in members]
        rows = self.rows_of(tokens.model_ids)
        features = torch.from_numpy(np.ascontiguousarray(tokens.features, dtype=np.float32))
        out = []
        for start in range(0, len(features), batch_size):
            x = features[start : start + batch_size].to(self.device)
            pair = self.pair_features(x, rows[start : start + batch_size], labels)
            out.append(torch.stack([m(x, pair, s) for m, s in zip(members, summaries, strict=True)]).mean(0))
        self.train(was_training)
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, dtype=np.float32)


__all__ = ["PAIR_FEATURES", "SCALAR_NAMES", "TransferScorer"]
