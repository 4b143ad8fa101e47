"""Listwise training of the Model Spider scorer on recorded fine-tuning results.

Each training task contributes one list: the models recorded on it, ordered by their best accuracy. The loss is
ListMLE (Xia et al., ICML 2008; the Plackett-Luce likelihood of the true order), as Model Spider uses. While a task
is trained on, its own column of the collaborative table is hidden (leave-one-out), so the learned model token never
shows a task its own answer, exactly as at test time; a random part of the models also loses its row each step, which
teaches content-only scoring for models never seen. Seeded and deterministic on CPU.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub.utils import tqdm

from ..errors import InvalidIndexError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..rankers.fennec import factorise, with_bias
from ..rankers.graph import percentile_matrix
from ..tokens.ptm import PTMTokens, TextEmbedder, archi2vec_slice, ptm_tokens, token_dim
from ..tokens.task import TaskTokens
from .model import LatentTables, TransferScorer, _Member, prior_readout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_scorer` (defaults: chosen on training targets only, see the benchmark).

    Args:
        seed: seeds the initialisation, and member ``i``'s sampling with ``seed * 1000 + i``.
        members: ensemble size.
        epochs: passes over the training tasks (one optimiser step per pass, all tasks in it).
        lr / weight_decay: AdamW for the content path (attention and head; it starts at zero output).
        skip_lr: AdamW for the linear read-out of the collaborative and similarity features (no weight decay).
        prior_strength: L2 pull of the read-out back to its prior (:data:`hf_spider.scorer.model.PRIOR_READOUT`),
            added to the mean ListMLE. 0 learns it freely, which ranked held-out targets worse on the benchmark
            (its ``hf_spider_free_readout`` row).
        hidden: scorer width.
        hide_fraction: share of models whose collaborative row is hidden at each step (teaches content-only scores).
        transfer_space: read the models' positions in a Fennec-style transfer space (factorised from the records,
            archi2vec placing unseen models) beside their collaborative rows.
        content_path: train the attention over the task tokens (the content path, which scores unseen models). Off
            by default: on the 23 TransferGraph targets it does not improve leave-one-target-out rankings and it
            halves the text cold-start tau (``benchmarks/transfergraph_bench.py`` shows the ablation); with it off,
            the content path's output layer stays at zero and unseen models are scored by the linear read-out.
    """

    seed: int = 0
    members: int = 3
    epochs: int = 100
    lr: float = 3e-3
    weight_decay: float = 0.05
    skip_lr: float = 3e-2
    prior_strength: float = 100.0
    hidden: int = 48
    hide_fraction: float = 0.3
    transfer_space: bool = True
    content_path: bool = False


@dataclass
class _TaskBatch:
    name: str
    rows: torch.Tensor  # [N] rows into the token matrix / collaborative table
    target: torch.Tensor  # [N] accuracies
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def list_mle(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ListMLE loss of one list: negative Plackett-Luce log-likelihood of the order given by ``target`` (per item)."""
    order = torch.argsort(target, descending=True, stable=True)
    s = scores[order]
    tail = torch.logcumsumexp(s.flip(0), dim=0).flip(0)  # log sum_{j >= i} exp(s_j)
    return (tail - s).mean()


def train_scorer(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    *,
    config: TrainConfig | None = None,
    tokens: PTMTokens | None = None,
    embedder: TextEmbedder | None = None,
    text_encoder: str | None = None,
    summary: str = "",
) -> TransferScorer:
    """Train a :class:`TransferScorer` on ``records`` of ``models`` for the training ``tasks``.

    Args:
        records: ground truth; targets without task tokens in ``tasks`` are skipped (logged).
        models: records of the models (content tokens); models without any record are still usable at scoring time.
        tasks: task tokens of the training targets, by target name.
        config: hyper-parameters.
        tokens: precomputed PTM tokens of ``models`` (same order), to skip embedding.
        embedder: the text embedder (and its cache) for the PTM tokens.
        text_encoder: Hub id of the text encoder of the PTM tokens, recorded in the scorer's config.
        summary: model-card Markdown, recorded in the config (see :func:`card_summary`).

    Raises:
        InvalidIndexError: no target has both task tokens and at least two recorded models.
    """
    config = config or TrainConfig()
    tokens = tokens if tokens is not None else ptm_tokens(models, text_encoder=text_encoder, embedder=embedder)
    position = {m: i for i, m in enumerate(tokens.model_ids)}
    recorded = replace(records, accuracy=records.accuracy[records.accuracy.model.isin(position)])
    norm = recorded.accuracy
    usable = [t for t in sorted(norm.target.unique()) if t in tasks and (norm.target == t).sum() >= 2]
    skipped = sorted(set(norm.target.unique()) - set(usable))
    if skipped:
        logger.info("no task tokens (or fewer than 2 models) for %d target(s), skipped: %s", len(skipped), skipped)
    if not usable:
        raise InvalidIndexError(
            "no training target has task tokens and at least two recorded models; pass tokens for the records' targets"
        )
    seen = sorted(set(norm.model))
    torch.manual_seed(config.seed)  # members are initialised one after the other from this stream
    scorer = TransferScorer(
        in_dim=token_dim(tokens.text_dim),
        text_dim=tokens.text_dim,
        proto_dim=_proto_dim(tasks, tokens.text_dim),
        hidden=config.hidden,
        members=config.members,
        model_ids=seen,
        train_tasks=usable,
        feature_schema_version=tokens.schema_version,
        text_encoder=text_encoder,
        summary=summary,
    )
    x = torch.from_numpy(np.ascontiguousarray(tokens.features[[position[m] for m in seen]], dtype=np.float32))
    _fill_tables(scorer, recorded, tasks)
    scorer.fit_text_basis(x)
    scorer.arch.copy_(x[:, archi2vec_slice()])
    if config.transfer_space:
        latent = fit_transfer_spaces(scorer, x, config.seed)
    else:  # the buffers stay zero: every transfer-space feature reads 0
        latent = {name: scorer.latent_tables() for name in usable}
    batches = []
    for name in usable:
        rows = norm[norm.target == name]
        batches.append(
            _TaskBatch(
                name=name,
                rows=torch.tensor([seen.index(m) for m in rows.model], dtype=torch.long),
                target=torch.tensor(rows.accuracy.to_numpy(), dtype=torch.float32),
                inputs=scorer.task_inputs(tasks[name]),
            )
        )
    with torch.no_grad():
        pairs = {
            b.name: (
                scorer.pair_features(x[b.rows], b.rows, b.inputs[0], exclude_task=b.name, latent=latent[b.name]),
                scorer.pair_features(
                    x[b.rows],
                    torch.full_like(b.rows, -1),
                    b.inputs[0],
                    exclude_task=b.name,
                    exclude_rows=b.rows,
                    latent=latent[b.name],
                ),
            )
            for b in batches
        }
    compressed = scorer.compress(x)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the lists are small: extra threads only add contention (and run-to-run jitter)
    try:
        for index, member in enumerate(scorer.member_modules):
            _train_member(member, compressed, batches, pairs, config, seed=config.seed * 1000 + index)
    finally:
        torch.set_num_threads(threads)
    logger.info("trained the scorer on %d tasks and %d models (%d members)", len(usable), len(seen), config.members)
    scorer.eval()
    return scorer


def _train_member(
    member: _Member,
    x: torch.Tensor,
    batches: list[_TaskBatch],
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]],
    config: TrainConfig,
    *,
    seed: int,
) -> None:
    """Full-batch AdamW on the summed ListMLE of every training task; deterministic given ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    groups = [{"params": list(member.skip.parameters()), "lr": config.skip_lr, "weight_decay": 0.0}]
    if config.content_path:
        rest = [p for name, p in member.named_parameters() if not name.startswith("skip.")]
        groups.append({"params": rest, "lr": config.lr, "weight_decay": config.weight_decay})
    optimiser = torch.optim.AdamW(groups)
    prior = prior_readout()
    member.train()
    for _ in tqdm(range(config.epochs), desc="train scorer", name="hf_spider.train", leave=False):
        optimiser.zero_grad()
        # [M, H]: each model encoded once per step (x: compressed tokens); without the content path its output layer
        # stays at zero, so the score is the linear read-out alone and the attention need not run.
        h = member.ptm(x) if config.content_path else None
        loss = torch.zeros(())
        for batch in batches:
            full, hidden = pairs[batch.name]
            hide = torch.rand(len(batch.rows), generator=generator) < config.hide_fraction
            pair = torch.where(hide[:, None], hidden, full)
            if h is None:
                scores = member.skip(pair).squeeze(1)
            else:
                scores = member.score_encoded(h[batch.rows], pair, member.task_summary(*batch.inputs))
            loss = loss + list_mle(scores, batch.target)
        anchor = config.prior_strength * (member.skip.weight - prior).pow(2).sum()
        (loss / len(batches) + anchor).backward()
        optimiser.step()
    member.eval()


def _fill_tables(scorer: TransferScorer, records: FinetuneRecords, tasks: Mapping[str, TaskTokens]) -> None:
    """Write the collaborative table (the models' accuracy percentiles, as the graph and Fennec rankers read them) and
    the training tasks' label embeddings into the scorer's buffers."""
    table = percentile_matrix(records)
    table = table.reindex(index=scorer.model_ids, columns=scorer.train_tasks)
    scorer.collab.copy_(torch.tensor(table.to_numpy(dtype=np.float32)))
    for i, name in enumerate(scorer.train_tasks):
        labels = tasks[name].label_embeddings
        if labels is not None and len(labels):
            vector = np.asarray(labels, dtype=np.float32).mean(0)
            scorer.task_embeddings[i] = torch.from_numpy(vector / max(float(np.linalg.norm(vector)), 1e-12))


def fit_transfer_spaces(scorer: TransferScorer, x: torch.Tensor, seed: int) -> dict[str, LatentTables]:
    """Factorise the collaborative table into the scorer's transfer space; one leave-one-out space per task.

    The scorer keeps the space of every training task. While a task is trained on, its features come from a space
    factorised without its column, as a new task's will: a space fitted to the task's own records would make the
    transfer-space score look more trustworthy in training than it can be at test time.
    """
    values = scorer.collab.double().numpy()
    arch = with_bias(x[:, archi2vec_slice()].double().numpy())

    def fit(table: np.ndarray) -> LatentTables:
        space = factorise(table, arch, rank=scorer.latent_rank, seed=seed)
        model_x, task_v, arch_map = (torch.from_numpy(a).float() for a in (space.model_x, space.task_v, space.arch_map))
        return LatentTables(model_x=model_x, task_v=task_v, arch_map=arch_map)

    full = fit(values)
    scorer.latent.copy_(full.model_x)
    scorer.task_latent.copy_(full.task_v)
    scorer.arch_map.copy_(full.arch_map)
    spaces = {}
    for column, name in enumerate(scorer.train_tasks):
        held_out = values.copy()
        held_out[:, column] = np.nan
        spaces[name] = fit(held_out)
    return spaces


def _proto_dim(tasks: Mapping[str, TaskTokens], default: int) -> int:
    widths = {int(t.prototypes.shape[-1]) for t in tasks.values() if t.prototypes is not None}
    if len(widths) > 1:
        raise InvalidIndexError(
            f"training tasks have prototypes of different widths {sorted(widths)}; encode them with one encoder"
        )
    return widths.pop() if widths else default


def train_default(
    output: str | os.PathLike[str],
    *,
    records: str | os.PathLike[str] | None = None,
    candidates: str | os.PathLike[str] = "bundled",
    config: TrainConfig | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> TransferScorer:
    """Train on every record (both modalities) and save the scorer with its model card to ``output``.

    Args:
        output: folder for ``config.json``, ``model.safetensors`` and ``README.md``.
        records: a TransferGraph records folder or a ``model,target,accuracy`` CSV (default: the bundled records).
        candidates: the models' records: ``"bundled"`` or an index file.
        config: hyper-parameters.
        metrics: benchmark results (``benchmarks/transfergraph_bench.py --json``) to state in the card.
    """
    from ..finetune_records import load_bundled_records, load_transfergraph, read_records_csv
    from ..ranking import load_candidates
    from .ranker import record_tasks

    config = config or TrainConfig()
    if records is None:
        data = load_bundled_records()
        source = "the bundled TransferGraph records (hf_spider/data/finetune_records.csv)"
    elif Path(records).is_dir():
        data, source = load_transfergraph(records), f"TransferGraph records at {records}"
    else:
        data, source = read_records_csv(records), f"records file {Path(records).name}"
    models = load_candidates(candidates)
    summary = card_summary(data, source, config, metrics)
    scorer = train_scorer(data, models, record_tasks(data), config=config, summary=summary)
    from ..hub.index import atomic_write

    scorer.save_pretrained(Path(output))
    with atomic_write(Path(output) / "README.md") as f:  # the mixin keeps an existing card; this one is ours
        f.write(str(scorer.generate_model_card()))
    return scorer


def card_summary(
    records: FinetuneRecords, source: str, config: TrainConfig, metrics: Mapping[str, Any] | None = None
) -> str:
    """Model-card Markdown: training data, hyper-parameters and, when given, the benchmark figures."""
    counts = records.accuracy.groupby("modality").agg(targets=("target", "nunique"), records=("model", "size"))
    lines = ["## Training data", "", f"Listwise (ListMLE) on {source}:", ""]
    lines += [
        f"- {m}: {int(r.targets)} targets, {int(r.records)} (model, target) results" for m, r in counts.iterrows()
    ]
    lines += ["", f"Hyper-parameters: `{json.dumps(asdict(config), sort_keys=True)}`."]
    if metrics:
        lines += ["", "## Benchmark (TransferGraph, leave one target out, mean weighted tau)", ""]
        lines += [
            "| modality | hf-spider (weighted) | hf-spider (plain) | collab prior | LogME | published TransferGraph |"
        ]
        lines += ["|---|---|---|---|---|---|"]
        for modality in ("image", "text"):
            if modality in metrics:
                w, p = metrics[modality]["weighted_mean"], metrics[modality]["plain_mean"]
                lines.append(
                    f"| {modality} | {w['hf_spider']:.3f} | {p['hf_spider']:.3f} | {w['collab_prior']:.3f} "
                    f"| {w['logme']:.3f} | {w['transfergraph_published']:.3f} |"
                )
        lines += ["", "Reproduce: `python benchmarks/transfergraph_bench.py --json OUT.json`."]
    return "\n".join(lines)
