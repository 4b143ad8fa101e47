"""The Model Spider scorer: a PTM token attends over a task's tokens and a head outputs a fitness score.

Reference: Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models Efficiently", NeurIPS 2023 (Sec. 3-4).
As in the paper, each candidate is a token, the task is a set of tokens (here: class prototypes, label-name
embeddings and statistics, any of them masked when missing) and a transformer-style attention produces the score.
Departures, each for the Hub setting:

* the task side is first pooled by a few learned queries, so ranking N candidates costs O(N), not O(N x classes),
  and is computed once per task; :meth:`TransferScorer.score_tokens` folds it into the weights (two fused matmuls per
  batch of candidates, every ensemble member's first layer in one);
* each text part of a PTM token is projected on its principal directions in the training models (rank 16) before
  the content path: 23 training tasks cannot fit 3 x 384 inputs, and scoring gets three times cheaper;
* the *learned model token* is the model's row of normalised accuracies on the training tasks (a collaborative
  signal), read through a task-similarity attention over the training tasks, and its vector in a Fennec-style
  transfer space factorised from those accuracies (:func:`hf_spider.rankers.fennec.factorise`), read against the
  task's similarity-weighted vector. An unseen model's token is the mean row of the seen models of its closest
  architecture (archi2vec; clones of one base share a row) and the transfer-space position its archi2vec maps to,
  plus its scalar content features (size, input size, card results) for a linear read-out that only unseen models
  use; training plays a random part of the models as unseen (their own record left out of their architecture's row);
* the read-out of the learned token is linear: a fixed prior (:data:`PRIOR_READOUT`) plus a correction learned
  listwise and pulled back to the prior (``TrainConfig.prior_strength``): learned freely on 9 to 12 training lists
  per modality, it ranked held-out targets worse than the prior alone. The attention over the task tokens (the
  content path) is trained only on request (``TrainConfig.content_path``): on 23 training targets it did not help
  the leave-one-target-out rankings and hurt cold-start text ones;
* several independently seeded members are averaged (small data: 23 targets), stored in one ``model.safetensors``.

Hub I/O comes from :class:`huggingface_hub.PyTorchModelHubMixin`: the JSON-able ``__init__`` arguments become
``config.json``, the weights ``model.safetensors``, and the class arguments the model card.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from ..errors import ScorerConfigError
from ..tokens.archi2vec import ARCHI2VEC_DIM
from ..tokens.ptm import (
    HEAD_DIM,
    PTM_SCHEMA_VERSION,
    SCALAR_NAMES,
    TEXT_PARTS,
    PTMTokens,
    archi2vec_slice,
    text_slice,
    token_dim,
)

if TYPE_CHECKING:
    from ..hub.records import ModelRecord
    from ..tokens.task import TaskTokens

logger = logging.getLogger(__name__)

#: Temperatures of the task-similarity attention over training tasks (sharp = nearest tasks, flat = plain mean).
SIMILARITY_TEMPERATURES = (0.05, 0.2)
#: Per-candidate scalar features the head sees besides the tokens (see :meth:`TransferScorer.pair_features`): the
#: learned token read for the task, label-name similarities, and the token's scalars for unseen models only, so the
#: linear read-out learns a content ranking (on the models hidden in training) that cannot disturb seen models.
PAIR_FEATURES = (
    "seen",
    "has_record",
    "collab_mean",
    "collab_square",
    "collab_near",
    "collab_mid",
    "label_sim",
    "dataset_sim",
    *(f"latent_{t}" for t in SIMILARITY_TEMPERATURES),
    *(f"unseen_{name}" for name in SCALAR_NAMES),
)
#: The read-out every member starts from (and, in training, is pulled back to): the mean square of the model's
#: percentiles on the training tasks (a consistently good model over one with a few lucky runs) plus its transfer-space
#: score at the flat temperature. Chosen on the benchmark's leave-one-target-out figures (23 targets leave no room for
#: a separate validation split).
PRIOR_READOUT = {"collab_square": 1.0, f"latent_{SIMILARITY_TEMPERATURES[-1]}": 1.0}
_NEG = -1e4  # additive attention mask; finite so an all-masked row cannot produce NaN
#: ``model_type`` written into ``config.json``: ``transformers.AutoConfig`` needs one to open the folder, and
#: :func:`hf_spider.pipeline.register` registers it, so ``transformers.pipeline(model=<scorer path>)`` works.
SCORER_MODEL_TYPE = "hf_spider_scorer"

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# hf-spider default scorer (Model Spider)

Ranks pre-trained Hub models for a classification task **without a forward pass of any candidate**. A model seen in
training is scored by its learned model token (Model Spider): its recorded fine-tuning results on the training tasks
and its vector in a Fennec-style transfer space factorised from them, read for the new task through the label-name
similarity of the training tasks. A model never seen is placed from its content token: the records of its closest seen
architecture (archi2vec) and the transfer-space position its architecture maps to. The attention of the content token
over the task's tokens (label names, class prototypes, statistics) is part of the model, trained only on request.

Use it with `hf-spider rank` or `hf_spider.rankers.get_ranker("spider")`; load it with
`TransferScorer.from_pretrained(path_or_repo_id)`. Rebuild it with `python scripts/train_default_scorer.py`.

{{ model_summary }}

## Limitations
- Trained on 23 TransferGraph targets (13 image, 10 text): classification only, small data; an exotic task gets
  a ranking close to the collaborative prior of the training records.
- Scores are comparable within one task only; the ranking does not replace re-ranking the top-k with forward passes.
- Models never seen in training are ranked from the mean record of their closest seen architecture and the
  transfer-space position of their architecture (archi2vec). In the cold-start benchmark (25 % of the models unseen)
  that beats the size prior on both modalities and LogME on image, but stays below LogME on text: re-rank unseen text
  models with forward passes.

Code: https://github.com/hf-spider/hf-spider
"""


def prior_readout() -> torch.Tensor:
    """``[1, len(PAIR_FEATURES)]`` weights of :data:`PRIOR_READOUT`."""
    weight = torch.zeros(1, len(PAIR_FEATURES))
    for name, value in PRIOR_READOUT.items():
        weight[0, PAIR_FEATURES.index(name)] = value
    return weight


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
    def linears(self) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        """The PTM encoder's first and second layers and the head's layer, typed (the fused scoring path reads them)."""
        return cast(nn.Linear, self.ptm[0]), cast(nn.Linear, self.ptm[3]), cast(nn.Linear, self.head[0])

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
    arch: torch.Tensor
    text_basis: torch.Tensor
    latent: torch.Tensor
    task_latent: torch.Tensor
    arch_map: torch.Tensor
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
        text_rank: each text part of a PTM token is projected on its ``text_rank`` principal directions in the
            training models (:meth:`fit_text_basis`) before the content path: 23 tasks cannot fit 3 x 384 inputs, and
            the projection makes scoring 100k candidates one thin matmul.
        latent_rank: dimension of the transfer space of the learned model tokens (Fennec's ``u_m``).
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
        text_rank: int = 16,
        latent_rank: int = 4,
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
        self.text_rank = text_rank
        self.latent_rank = latent_rank
        self.model_ids = list(model_ids or [])
        self.train_tasks = list(train_tasks or [])
        self.estimators = list(estimators or [])
        self.feature_schema_version = feature_schema_version
        self.text_encoder = text_encoder
        self.summary = summary
        self._row = {m: i for i, m in enumerate(self.model_ids)}
        self.members = nn.ModuleList(
            _Member(self._head_width() + len(TEXT_PARTS) * text_rank, text_dim, proto_dim, stats_dim, hidden, pooled)
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
        # archi2vec of each seen model: an unseen model reads the records of its closest seen architecture.
        self.register_buffer("arch", torch.zeros(len(self.model_ids), ARCHI2VEC_DIM))
        # Fennec's transfer space (filled by training, see hf_spider.rankers.fennec.factorise): (b_m, u_m) of each seen
        # model, (c_t, v_t) of each training task, and the ridge map from (archi2vec, 1) to (b_m, u_m) that places a
        # model never seen. A task's vector is the similarity-weighted mean of the training tasks' vectors.
        self.register_buffer("latent", torch.zeros(len(self.model_ids), latent_rank + 1))
        self.register_buffer("task_latent", torch.zeros(len(self.train_tasks), latent_rank + 1))
        self.register_buffer("arch_map", torch.zeros(ARCHI2VEC_DIM + 1, latent_rank + 1))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, **kwargs: Any) -> TransferScorer:
        """The mixin's loader, strict about weight names, and quiet: it ``print``s for local folders; we log.

        Raises:
            ScorerConfigError: the weights were saved by a scorer of another layout (an older hf-spider).
        """
        kwargs.setdefault("strict", True)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                scorer = super()._from_pretrained(model_id=model_id, **kwargs)
        except RuntimeError as exc:  # torch's strict load_state_dict: missing / unexpected / mis-shaped weights
            if "state_dict" not in str(exc):
                raise
            detail = " ".join(str(exc).split())
            raise ScorerConfigError(
                f"the scorer at {model_id} does not match this hf-spider's TransferScorer ({detail}); retrain it with "
                "`hf-spider train-scorer` or use the hf-spider version that saved it"
            ) from exc
        logger.info("loaded scorer from %s", model_id)
        return cast(TransferScorer, scorer)

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
        latent: LatentTables | None = None,
    ) -> torch.Tensor:
        """``[N, len(PAIR_FEATURES)]``: the learned model token read for this task, and label-name similarities.

        A seen model's learned token is its own row of the collaborative table and its vector in the transfer space;
        an unseen one's is the mean row of the seen models of its closest architecture (Model Spider's token for a model
        never trained on) and the vector its archi2vec maps to (Fennec's placement), so the weights learned on seen
        models also rank unseen ones. This is the reference; :meth:`score_tokens` computes the same values for a whole
        zoo with one fused matmul.

        Args:
            x: ``[N, in_dim]`` PTM tokens.
            rows: ``[N]`` row of each candidate in the collaborative table, ``-1`` for unseen models.
            labels: ``[C, D]`` the task's label-name embeddings (may be empty).
            exclude_task: a training task whose column is hidden (training on that task: leave-one-out).
            exclude_rows: ``[N]`` table row whose record must not count in the candidate's architecture row (training
                plays a seen model as unseen: its own record would leak in), ``-1`` for none.
            latent: the transfer space to read instead of the scorer's own (training passes one factorised without
                ``exclude_task``, so a task never sees a space fitted to its own records).
        """
        task_vec = self._task_vector(labels)
        collab = self._masked_collab(exclude_task)
        seen = rows >= 0
        own = self._row_features(collab, task_vec)  # [M, 5]
        use_own = seen & (own[rows.clamp(min=0), 0] > 0) if len(own) else torch.zeros_like(seen)
        nearest = self._nearest_architecture(x, own, self._architecture_groups(own), exclude_rows)
        row_features = torch.where(use_own[:, None], own[rows.clamp(min=0)], nearest) if len(own) else nearest
        sims = [x[:, text_slice(name, self.text_dim)] @ task_vec for name in ("label_embedding", "dataset_embedding")]
        latent = latent or self.latent_tables()
        placed = self._arch_latent(x, latent.arch_map)  # [N, k + 1]
        vectors = (
            torch.where(use_own[:, None], latent.model_x[rows.clamp(min=0)], placed) if len(latent.model_x) else placed
        )
        queries = self._latent_queries(task_vec, latent.task_v, exclude_task)
        return torch.cat(
            [
                use_own.float()[:, None],
                row_features,
                torch.stack(sims, dim=1),
                vectors @ queries.T,
                x[:, : len(SCALAR_NAMES)] * (~use_own).float()[:, None],
            ],
            dim=1,
        )

    def _architecture_groups(self, own: torch.Tensor) -> _ArchitectureGroups:
        """The seen models grouped by identical archi2vec, with the summed learned-token features ``own [M, F]`` of the
        members that have a record (clones share one entry, so a zoo of fine-tuned copies of one base counts once)."""
        arch, member = torch.unique(self.arch, dim=0, return_inverse=True)
        has = (own[:, 0] > 0).float()
        total = own.new_zeros(len(arch), own.shape[1]).index_add_(0, member, own * has[:, None])
        return _ArchitectureGroups(
            arch=arch, member=member, total=total, count=has.new_zeros(len(arch)).index_add_(0, member, has)
        )

    def _nearest_architecture(
        self, x: torch.Tensor, own: torch.Tensor, groups: _ArchitectureGroups, exclude_rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[N, F]`` the mean learned-token features of each token's closest seen architecture (what an unseen model
        reads instead of its own row); zeros where no seen model has a record.

        Closest by archi2vec distance, computed exactly so that a clone of a seen architecture lands at 0 (the matmul
        form of ``cdist`` loses that to cancellation). Reading the one closest architecture beat the mean of the five
        closest (each weighted ``exp(-d)``) and the family's mean on the cold-start benchmark, most on text, where the
        five closest mix distinct bases of one size. ``exclude_rows`` ``[N]`` names a seen model whose own record must
        not count (training plays it as unseen), ``-1`` for none.
        """
        if len(groups.arch) == 0:
            return x.new_zeros(len(x), own.shape[1])
        total = groups.total.expand(len(x), -1, -1)  # [N, G, F]
        count = groups.count.expand(len(x), -1)  # [N, G]
        if exclude_rows is not None:
            index = exclude_rows.clamp(min=0)
            mine = (exclude_rows >= 0).float() * (own[index, 0] > 0).float()
            groups_of = torch.arange(len(groups.arch), device=x.device)
            own_group = (groups.member[index][:, None] == groups_of).float() * mine[:, None]  # [N, G]
            count = count - own_group
            total = total - own_group[..., None] * own[index][:, None, :]
        distance = torch.cdist(x[:, archi2vec_slice()], groups.arch, compute_mode="donot_use_mm_for_euclid_dist")
        closest = distance.masked_fill(count < 0.5, float("inf")).argmin(dim=1, keepdim=True)  # [N, 1]
        found = count.gather(1, closest)  # [N, 1]; 0 when no architecture has a record
        chosen = total.gather(1, closest[..., None].expand(-1, -1, own.shape[1])).squeeze(1)  # [N, F]
        return chosen / found.clamp(min=1)

    def latent_tables(self) -> LatentTables:
        """The scorer's transfer space (its buffers)."""
        return LatentTables(model_x=self.latent, task_v=self.task_latent, arch_map=self.arch_map)

    def _arch_latent(self, x: torch.Tensor, arch_map: torch.Tensor) -> torch.Tensor:
        """``[N, k + 1]`` the transfer-space position of each token's archi2vec (where a model with no record sits)."""
        return x[:, archi2vec_slice()] @ arch_map[:-1] + arch_map[-1]

    def _latent_queries(self, task_vec: torch.Tensor, task_v: torch.Tensor, exclude_task: str | None) -> torch.Tensor:
        """``[len(SIMILARITY_TEMPERATURES), k + 1]`` ``(1, v)`` of the task at each temperature.

        ``v`` is the softmax-weighted mean of the training tasks' vectors by label-name similarity (Fennec's proxy
        for a new task), ``exclude_task`` weighing nothing; a model at ``(b_m, u_m)`` scores ``b_m + u_m . v``.
        """
        similarity = self.task_embeddings @ task_vec  # [T]
        allowed = torch.tensor([t != exclude_task for t in self.train_tasks], dtype=torch.bool, device=task_v.device)
        queries = []
        for temperature in SIMILARITY_TEMPERATURES:
            logits = torch.where(allowed, similarity / temperature, torch.full_like(similarity, _NEG))
            weights = torch.softmax(logits, dim=0) * allowed
            vector = weights @ task_v / weights.sum().clamp(min=1e-12)  # [k + 1]; zeros without training tasks
            queries.append(torch.cat([vector.new_ones(1), vector[1:]]))
        return torch.stack(queries)

    def _task_vector(self, labels: torch.Tensor) -> torch.Tensor:
        """``[D]`` normalised mean label-name embedding of a task (zeros when it has none)."""
        if len(labels) == 0:
            return labels.new_zeros(self.text_dim)
        return nn.functional.normalize(labels.mean(0), dim=0)

    def _masked_collab(self, exclude_task: str | None) -> torch.Tensor:
        """The collaborative table, with ``exclude_task``'s column hidden when it is a training task."""
        if exclude_task is None or exclude_task not in self.train_tasks:
            return self.collab
        collab = self.collab.clone()
        collab[:, self.train_tasks.index(exclude_task)] = float("nan")
        return collab

    def _head_width(self) -> int:
        """Width of the non-text head of a PTM token (scalars, family buckets, archi2vec)."""
        return HEAD_DIM

    def compress(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, head + parts * text_rank]``: PTM tokens with each text part projected on its basis."""
        text = x[:, self._head_width() :].reshape(len(x), len(TEXT_PARTS), self.text_dim)
        projected = torch.einsum("npd,pdr->npr", text, self.text_basis).reshape(len(x), -1)
        return torch.cat([x[:, : self._head_width()], projected], dim=1)

    @torch.no_grad()
    def fit_text_basis(self, x: torch.Tensor) -> None:
        """Set each text part's basis to the top right-singular vectors of the training models' embeddings.

        Uncentred SVD over the models that have the part (zero rows mean "missing"); deterministic on one machine.
        """
        text = x[:, self._head_width() :].reshape(len(x), len(TEXT_PARTS), self.text_dim)
        for part in range(len(TEXT_PARTS)):
            rows = text[:, part][text[:, part].norm(dim=1) > 0]  # [M_p, D]
            basis = torch.zeros(self.text_dim, self.text_rank)
            if len(rows):
                directions = torch.linalg.svd(rows.double(), full_matrices=False).Vh[: self.text_rank].T.float()
                basis[:, : directions.shape[1]] = directions
            self.text_basis[part] = basis

    def _row_features(self, table: torch.Tensor, task_vec: torch.Tensor) -> torch.Tensor:
        """``[K, 5]`` has-record, mean, mean square and similarity-weighted means of ``table`` ``[K, T]``.

        No record count: how many targets a model was fine-tuned on says nothing about a new one (weighted tau 0.06 to
        0.1 on the benchmark), yet listwise training leaned on it.
        """
        known = ~torch.isnan(table)
        values = torch.nan_to_num(table) * known
        count = known.sum(1).float()
        means = [values.sum(1) / count.clamp(min=1), (values**2).sum(1) / count.clamp(min=1)]
        similarity = self.task_embeddings @ task_vec  # [T]
        top = similarity.max() if len(similarity) else similarity.new_zeros(())  # shift for a stable exp
        for temperature in SIMILARITY_TEMPERATURES:
            weights = torch.exp((similarity - top) / temperature) * known  # [K, T]
            means.append((values * weights).sum(1) / weights.sum(1).clamp(min=1e-6))
        has = (count > 0).float()
        return torch.stack([has, *(m * has for m in means)], dim=1)

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
        compressed = self.compress(x)
        scores = [m(compressed, pair, m.task_summary(labels, protos, stats, mask)) for m in self.member_modules]
        return torch.stack(scores).mean(0)

    def rows_of(self, model_ids: Sequence[str]) -> torch.Tensor:
        """``[N]`` collaborative-table row per model id, ``-1`` for models never seen in training."""
        rows = np.fromiter((self._row.get(m, -1) for m in model_ids), dtype=np.int64, count=len(model_ids))
        return torch.from_numpy(rows).to(self.device)

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """The :class:`~hf_spider.rankers.base.Ranker` interface: ``[len(candidates)]`` fitness scores for ``task``."""
        from ..tokens.ptm import ptm_tokens

        return self.score_tokens(ptm_tokens(candidates, text_encoder=self.text_encoder), task)

    @torch.no_grad()
    def score_tokens(self, tokens: PTMTokens, task: TaskTokens, *, batch_size: int = 32_768) -> np.ndarray:
        """``[N]`` fitness of each tokenised candidate: the task side once, then one fused matmul per batch.

        Everything that depends on the task only is folded into the weights first (:meth:`_fused_weights`): the
        text projection and the label- and dataset-similarity columns share one thin ``[in_dim, parts * r + 2]``
        matrix, the members' first layers and the archi2vec placement's transfer-space scores one
        ``[head + parts * r, members * H + L]`` matrix, and attention keys become an ``[H, P + 1]`` matrix, so a
        candidate costs one row of two matmuls plus a few ``H x H`` products; an unseen candidate also one distance
        row to the seen architectures. Equal to :meth:`forward` (tested).
        """
        self.check_tokens(tokens)
        was_training = self.training
        self.eval()
        fused = self._fused_weights(task)
        rows = self.rows_of(tokens.model_ids)
        features = torch.from_numpy(np.ascontiguousarray(tokens.features, dtype=np.float32))
        out = [
            self._score_fused(
                features[start : start + batch_size].to(self.device), rows[start : start + batch_size], fused
            )
            for start in range(0, len(features), batch_size)
        ]
        self.train(was_training)
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, dtype=np.float32)

    def _fused_weights(self, task: TaskTokens) -> _Fused:
        """The task side of :meth:`score_tokens`, computed once per task."""
        labels, protos, stats, mask = self.task_inputs(task)
        task_vec = self._task_vector(labels)
        members = self.member_modules
        hidden = members[0].q.in_features
        # Transfer-space scores: the seen models' own, and the archi2vec placement's as columns of stage 2.
        queries = self._latent_queries(task_vec, self.task_latent, None)  # [L, k + 1]
        rows = self._row_features(self.collab, task_vec)  # [M, 5]; unseen candidates read their closest architecture's
        own = torch.cat([rows, self.latent @ queries.T], dim=1)  # [M, 5 + L]
        # Stage 1 [in_dim, parts * r + 2]: the text projection (block diagonal) and the two similarity columns.
        rank = self.text_rank
        text = torch.zeros(self.in_dim, len(TEXT_PARTS) * rank + 2, device=self.device)
        for part, name in enumerate(TEXT_PARTS):
            text[text_slice(name, self.text_dim), part * rank : (part + 1) * rank] = self.text_basis[part]
        text[text_slice("label_embedding", self.text_dim), -2] = task_vec
        text[text_slice("dataset_embedding", self.text_dim), -1] = task_vec
        # Stage 2 [head + parts * r, members * H + L]: every member's first layer and the archi2vec placement's
        # transfer-space scores (what an unseen model reads instead of its own vector).
        placement = torch.zeros(members[0].linears[0].in_features, len(queries), device=self.device)
        placement[archi2vec_slice()] = self.arch_map[:-1] @ queries.T
        weight = torch.cat([*(m.linears[0].weight.T for m in members), placement], dim=1)
        bias = torch.cat([*(m.linears[0].bias for m in members), self.arch_map[-1] @ queries.T])
        per_member = []
        for m in members:
            summary = m.task_summary(labels, protos, stats, mask)  # [P + 1, H]
            values = m.v(summary)  # [P + 1, H]
            head_w = m.linears[2].weight.T  # [3H + F, H]: blocks of cat([h, ctx, h * ctx, pair])
            per_member.append(
                _FusedMember(
                    second=m.linears[1],
                    # q(h) . k(s) / sqrt(H) == h @ (W_q^T k(s)^T) / sqrt(H): keys beside the head's h block
                    h_block=torch.cat([head_w[:hidden], m.q.weight.T @ m.k(summary).T / hidden**0.5], dim=1),
                    value_block=torch.cat([values, values @ head_w[hidden : 2 * hidden]], dim=1),  # [P + 1, 2H]
                    product_block=head_w[2 * hidden : 3 * hidden],
                    out=m.out,
                )
            )
        # The pair features enter every member's head and skip read-out linearly: one [F, members * H + members].
        pair_weight = torch.cat(
            [*(m.linears[2].weight[:, 3 * hidden :].T for m in members), *(m.skip.weight.T for m in members)], dim=1
        )
        pair_bias = torch.cat([*(m.linears[2].bias for m in members), *(m.skip.bias for m in members)])
        return _Fused(
            text=text,
            weight=weight,
            bias=bias,
            own=own,
            groups=self._architecture_groups(rows),
            pair_weight=pair_weight,
            pair_bias=pair_bias,
            members=per_member,
            hidden=hidden,
        )

    def _score_fused(self, x: torch.Tensor, rows: torch.Tensor, fused: _Fused) -> torch.Tensor:
        """``[N]`` scores of one batch from the precomputed task side (eval mode: dropout is the identity)."""
        projected = x @ fused.text  # [N, parts * r + 2]
        compressed = torch.cat([x[:, : self._head_width()], projected[:, :-2]], dim=1)  # == self.compress(x)
        z = torch.addmm(fused.bias, compressed, fused.weight)  # [N, members * H + L]
        sims = projected[:, -2:]
        seen = rows >= 0
        use_own = seen & (fused.own[rows.clamp(min=0), 0] > 0) if len(fused.own) else torch.zeros_like(seen)
        row_width = fused.own.shape[1] - len(SIMILARITY_TEMPERATURES)
        placed = torch.cat([x.new_zeros(len(x), row_width), z[:, len(fused.members) * fused.hidden :]], dim=1)
        if not bool(use_own.all()):
            unseen_rows = ~use_own
            placed[unseen_rows, :row_width] = self._nearest_architecture(
                x[unseen_rows], fused.own[:, :row_width], fused.groups
            )
        table = torch.where(use_own[:, None], fused.own[rows.clamp(min=0)], placed) if len(fused.own) else placed
        unseen = (~use_own).float()[:, None]
        pair = torch.cat(
            [
                use_own.float()[:, None],
                table[:, :row_width],
                sims,
                table[:, row_width:],
                x[:, : len(SCALAR_NAMES)] * unseen,
            ],
            dim=1,
        )
        count, hidden = len(fused.members), fused.hidden
        linear = torch.addmm(fused.pair_bias, pair, fused.pair_weight)  # [N, members * H + members]
        skip = linear[:, count * hidden :].sum(1)
        if bool(use_own.all()):  # seen models are scored by their learned token alone
            return skip / count
        first = nn.functional.gelu(z[:, : count * hidden])  # [N, members * H]
        content = torch.zeros(len(x), device=x.device)
        for index, f in enumerate(fused.members):
            block = slice(index * hidden, (index + 1) * hidden)
            h = f.second(first[:, block])  # [N, H]
            h_terms = h @ f.h_block  # [N, H + P + 1]
            attended = torch.softmax(h_terms[:, hidden:], dim=-1) @ f.value_block  # [N, 2H]: ctx, its head term
            pre = h_terms[:, :hidden] + attended[:, hidden:] + linear[:, block]
            pre += (h * attended[:, :hidden]) @ f.product_block
            content += f.out(nn.functional.gelu(pre)).squeeze(1)
        return (skip + unseen[:, 0] * content) / count


@dataclass(frozen=True)
class LatentTables:
    """Fennec's transfer space as the scorer reads it (:func:`hf_spider.rankers.fennec.factorise`, as tensors)."""

    model_x: torch.Tensor  # [M, k + 1] (b_m, u_m) of the seen models
    task_v: torch.Tensor  # [T, k + 1] (c_t, v_t) of the training tasks
    arch_map: torch.Tensor  # [A + 1, k + 1] (archi2vec, 1) -> (b_m, u_m)


@dataclass(frozen=True)
class _ArchitectureGroups:
    """Seen models grouped by identical archi2vec (:meth:`TransferScorer._architecture_groups`)."""

    arch: torch.Tensor  # [G, A] the distinct architectures
    member: torch.Tensor  # [M] group of each seen model
    total: torch.Tensor  # [G, F] summed learned-token features of the members with a record
    count: torch.Tensor  # [G] members with a record


@dataclass(frozen=True)
class _FusedMember:
    """One member's task-dependent matrices for :meth:`TransferScorer.score_tokens`."""

    second: nn.Linear  # the PTM encoder's second layer
    h_block: torch.Tensor  # [H, H + P + 1]: head weight of h, then the attention keys
    value_block: torch.Tensor  # [P + 1, 2H]: attention values, then their head weight
    product_block: torch.Tensor  # [H, H]: head weight of h * ctx
    out: nn.Linear


@dataclass(frozen=True)
class _Fused:
    """The task side of :meth:`TransferScorer.score_tokens`: fused first layer, learned tokens, member matrices."""

    text: torch.Tensor  # [in_dim, parts * r + 2]
    weight: torch.Tensor  # [head + parts * r, members * H + L]
    bias: torch.Tensor  # [members * H + L]
    own: torch.Tensor  # [M, 5 + L] learned-token features of the seen models (row features, transfer-space scores)
    groups: _ArchitectureGroups  # the seen architectures, where unseen candidates read their row features
    pair_weight: torch.Tensor  # [F, members * H + members]
    pair_bias: torch.Tensor  # [members * H + members]
    members: list[_FusedMember]
    hidden: int


__all__ = ["PAIR_FEATURES", "SCALAR_NAMES", "TransferScorer"]
