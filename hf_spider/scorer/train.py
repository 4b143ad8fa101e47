"""Listwise training of the Model Spider scorer on recorded fine-tuning results, and of its estimate for unseen models.

Each training task contributes one list: the models recorded on it, ordered by their best accuracy. The loss is
ListMLE (Xia et al., ICML 2008; the Plackett-Luce likelihood of the true order), as Model Spider uses. While a task
is trained on, its own column of the collaborative table is hidden (leave-one-out), so the learned model token never
shows a task its own answer, exactly as at test time. Then, on the models seen in training only:

* the read-out is calibrated to accuracy percentiles on the same leave-one-out lists, so scores mean the same for
  seen and unseen models;
* the cold-start forest (:mod:`hf_spider.scorer.forest`) learns each model's mean percentile from its token head;
* cross-fitted forest estimates (each model scored by a forest that never saw it) give the confidence of each
  evidence kind.

Seeded and deterministic on CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from huggingface_hub.utils import tqdm

from ..errors import InvalidIndexError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..hub.sanitize import some_of
from ..outputs.shortlist import EVIDENCE_KINDS
from ..rankers.fennec import factorise, with_bias
from ..rankers.graph import percentile_matrix
from ..tokens.ptm import HEAD_DIM, SCALAR_NAMES, PTMTokens, TextEmbedder, archi2vec_slice, ptm_tokens, token_dim
from ..tokens.task import TaskTokens
from .forest import ForestArrays, fit_forest, predict_forest
from .inputs import COLD_START_EXTRA, cold_start_features, evidence_of_head
from .model import TransferScorer, _Member
from .pair import LatentTables, prior_readout, task_group
from .protocols import ProtocolRecords, finetune_protocol_records

logger = logging.getLogger(__name__)

#: Folds of the seen models for the cross-fitted cold-start estimates (4 hides a quarter, as the benchmark does).
CROSS_FIT_FOLDS = 4
#: An evidence kind with fewer seen models than this takes the confidence of all cold-start estimates.
MIN_GROUP = 8
#: Most held-out transfer spaces fitted in training (:func:`fit_transfer_spaces`): with more task groups, each space
#: leaves out a fold of groups rather than one, so training time grows linearly with the targets, not with their square.
#: 32 keeps every fold one group for the shipped scorer (23 targets) and the zoo's meta-training (18 groups).
TRANSFER_SPACE_FOLDS = 32


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_scorer`.

    Defaults: ``prior_strength`` and ``content_path`` were chosen from the TransferGraph benchmark's ablation rows, on
    the targets that benchmark reports (the README's "Shipped settings" says so beside its figures); the others were
    fixed when the scorer was written, with no recorded search.

    Args:
        seed: seeds the initialisation, and member ``i``'s sampling with ``seed * 1000 + i``.
        members: ensemble size.
        epochs: passes over the training tasks (one optimiser step per pass, all tasks in it).
        lr / weight_decay: AdamW for the content path (attention and head; it starts at zero output).
        skip_lr: AdamW for the linear read-out of the collaborative and similarity features (no weight decay).
        prior_strength: L2 pull of the read-out back to its prior (:data:`hf_spider.scorer.pair.PRIOR_READOUT`),
            added to the mean ListMLE. 0 learns it freely, which ranked held-out targets worse on the benchmark
            (its ``hf_spider_free_readout`` row).
        hidden: scorer width.
        transfer_space: read the models' positions in a Fennec-style transfer space (factorised from the records)
            beside their collaborative rows.
        content_path: train the attention over the task tokens, a task-specific correction of every seen model's
            score. Off by default: on the 23 TransferGraph targets, known by their label names only, it does not
            improve the leave-one-target-out rankings (``benchmarks/transfergraph_bench.py`` shows the ablation).
        forest_trees: trees of the cold-start forest (0: models without records all score the mean).
    """

    seed: int = 0
    members: int = 3
    epochs: int = 100
    lr: float = 3e-3
    weight_decay: float = 0.05
    skip_lr: float = 3e-2
    prior_strength: float = 100.0
    hidden: int = 48
    transfer_space: bool = True
    content_path: bool = False
    forest_trees: int = 100


@dataclass
class _TaskBatch:
    name: str
    rows: torch.Tensor  # [N] rows into the token matrix / collaborative table
    target: torch.Tensor  # [N] accuracies (or an approximated ranking's values, see training_labels)
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    trust: float = 1.0  # weight of the list in the loss: 1 for measured accuracy


def list_mle(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ListMLE loss of one list: negative Plackett-Luce log-likelihood of the order given by ``target`` (per item)."""
    order = torch.argsort(target, descending=True, stable=True)
    s = scores[order]
    tail = torch.logcumsumexp(s.flip(0), dim=0).flip(0)  # log sum_{j >= i} exp(s_j)
    return (tail - s).mean()


def training_labels(records: FinetuneRecords) -> tuple[pd.DataFrame, dict[str, float]]:
    """Each training task's list and how far to trust it (Model Spider's approximated rankings).

    A task with measured accuracies is ranked by them (trust 1). A task with only forward-pass estimator values (the
    sampled tasks of ``hf-spider build-records`` that were not fine-tuned) is ranked by an ensemble of its estimators'
    within-task percentiles, each estimator weighted by how well it agrees with measured accuracy (mean Spearman over
    the tasks of its modality that have both; an estimator that disagrees weighs nothing); the task is then trusted as
    much as that ensemble agrees with measured accuracy. A modality with no measured task gives its estimator-only
    tasks nothing to be trusted against, so they are left out.

    Returns:
        ``model, target, modality, accuracy`` rows (``accuracy`` holds the approximated ranking's values for
        estimator-only tasks; only their order is used) and the trust of every task that has rows.
    """
    from scipy.stats import spearmanr

    from ..estimators import ESTIMATORS

    accuracy = records.accuracy[["model", "target", "modality", "accuracy"]]
    trust = dict.fromkeys(accuracy.target.unique().tolist(), 1.0)
    scores = records.estimator_scores
    approximate = scores[~scores.target.isin(trust)]
    if approximate.empty:
        return accuracy, trust
    sign = scores.estimator.map(lambda e: 1.0 if e not in ESTIMATORS or ESTIMATORS[e].higher_is_better else -1.0)
    scores = scores.assign(percentile=(scores.score * sign).groupby([scores.target, scores.estimator]).rank(pct=True))
    wide = scores.pivot_table(index=["target", "model"], columns="estimator", values="percentile")
    truth = accuracy.set_index(["target", "model"]).accuracy

    def agreement(values: pd.Series) -> float:
        joined = pd.concat([values.rename("v"), truth.rename("t")], axis=1, join="inner").dropna()
        per_task = [
            spearmanr(g.v, g.t)[0]
            for _, g in joined.groupby(level=0)
            if len(g) >= 3 and g.v.nunique() > 1 and g.t.nunique() > 1  # a constant side has no order to agree with
        ]
        return float(np.nanmean(per_task)) if per_task else float("nan")

    rows = []
    modality_of = scores.groupby("target").modality.first()
    for modality in sorted(modality_of.unique()):
        in_modality = wide[wide.index.get_level_values(0).isin(modality_of[modality_of == modality].index)]
        weights = {e: max(0.0, agreement(in_modality[e])) for e in in_modality.columns}
        weights = {e: w for e, w in weights.items() if w == w and w > 0}  # NaN: nothing measured to agree with
        if not weights:
            continue
        ensemble = sum(in_modality[e].fillna(0.5) * w for e, w in weights.items()) / sum(weights.values())
        task_trust = max(0.0, agreement(ensemble))
        for (target, model), value in ensemble.items():
            if target not in trust and task_trust > 0:
                rows.append({"model": model, "target": target, "modality": modality, "accuracy": float(value)})
        approximated = {t for t in ensemble.index.get_level_values(0) if t not in trust}
        trust.update(dict.fromkeys(sorted(approximated), task_trust) if task_trust > 0 else {})
        logger.info("%s: estimator weights %s, trust of approximated tasks %.2f", modality, weights, task_trust)
    if not rows:  # no estimator-only task could be ranked: an empty frame in the concat would make accuracy object
        return accuracy.reset_index(drop=True), trust
    approximated_rows = pd.DataFrame(rows, columns=accuracy.columns).astype({"accuracy": float})
    return pd.concat([accuracy, approximated_rows], ignore_index=True), trust


def protocol_records(
    records: FinetuneRecords, label_names: Mapping[str, Sequence[str]] | None = None
) -> ProtocolRecords:
    """``records`` as the task-aware model reads them (:mod:`hf_spider.scorer.protocols`): measured accuracies as
    protocol ``finetune``, and the tasks with forward-pass estimator values only (sampled tasks of ``hf-spider
    build-records`` that were not fine-tuned) as protocol ``estimator``, each ranked by the estimator ensemble the
    scorer trains on (:func:`training_labels`; a modality with no measured task to trust it against has none)."""
    labels, _ = training_labels(records)
    measured = set(records.accuracy.target)
    no_scores = records.estimator_scores.iloc[:0]
    estimated = FinetuneRecords(labels[~labels.target.isin(measured)].reset_index(drop=True), no_scores)
    finetuned = finetune_protocol_records(records, label_names)
    return finetuned + finetune_protocol_records(estimated, label_names, protocol="estimator")


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
        records: ground truth; what cannot be trained on is left out (warned, see :func:`left_out_notes`).
        models: records of the models (content tokens); models without any record are still usable at scoring time.
        tasks: task tokens of the training targets, by target name.
        config: hyper-parameters.
        tokens: precomputed PTM tokens of ``models`` (same order), to skip embedding.
        embedder: the text embedder (and its cache) for the PTM tokens.
        text_encoder: Hub id of the text encoder of the PTM tokens, recorded in the scorer's config.
        summary: model-card Markdown, recorded in the config (see :func:`card_summary`).

    Records training cannot use are left out with a warning for each kind (:func:`left_out_notes`); when nothing is
    left, those notes are the error.

    Raises:
        InvalidIndexError: no target has both task tokens and at least two recorded models.
    """
    config = config or TrainConfig()
    tokens = tokens if tokens is not None else ptm_tokens(models, text_encoder=text_encoder, embedder=embedder)
    position = {m: i for i, m in enumerate(tokens.model_ids)}
    labels, trust = training_labels(records)
    recorded = replace(records, accuracy=labels[labels.model.isin(position)])
    norm = recorded.accuracy
    lists = {str(t): rows for t, rows in norm.groupby("target", sort=True)}  # one pass, not a mask per target
    usable = [t for t, rows in lists.items() if t in tasks and len(rows) >= 2]
    notes = left_out_notes(records, labels, position, tasks)
    if not usable:
        raise InvalidIndexError(
            "no training target has task tokens and at least two recorded models"
            + (f": {'; '.join(notes)}" if notes else "; give each target the accuracies of two or more models")
        )
    for note in notes:
        logger.warning("%s", note)
    seen = sorted(set(norm.model))
    table = percentile_matrix(recorded).reindex(index=seen, columns=usable)
    quality = table.mean(axis=1).dropna()  # each seen model's mean percentile (none: records on skipped targets only)
    forest_inputs = _cold_start_inputs(tokens, quality)
    forest = (
        fit_forest(forest_inputs, quality.to_numpy(), seed=config.seed, trees=config.forest_trees)
        if config.forest_trees and len(quality) >= 2
        else None
    )
    torch.manual_seed(config.seed)  # members are initialised one after the other from this stream
    scorer = TransferScorer(
        in_dim=token_dim(tokens.text_dim),
        text_dim=tokens.text_dim,
        proto_dim=_proto_dim(tasks, tokens.text_dim),
        hidden=config.hidden,
        members=config.members,
        model_ids=seen,
        train_tasks=usable,
        forest_trees=len(forest.feature) if forest else 0,
        forest_nodes=forest.feature.shape[1] if forest else 1,
        feature_schema_version=tokens.schema_version,
        text_encoder=text_encoder,
        sample_encoders=sample_encoders({name: tasks[name] for name in usable}),
        summary=summary,
    )
    if forest is not None:
        _load_forest(scorer, forest)
    x = torch.from_numpy(np.ascontiguousarray(tokens.features[[position[m] for m in seen]], dtype=np.float32))
    scorer.collab.copy_(torch.tensor(table.to_numpy(dtype=np.float32)))
    _fill_task_embeddings(scorer, tasks)
    scorer.fit_text_basis(x)
    row_of = {m: i for i, m in enumerate(seen)}
    batches = [
        _TaskBatch(
            name=name,
            rows=torch.tensor([row_of[m] for m in lists[name].model], dtype=torch.long),
            target=torch.tensor(lists[name].accuracy.to_numpy(), dtype=torch.float32),
            inputs=scorer.task_inputs(tasks[name]),
            trust=trust.get(name, 1.0),
        )
        for name in usable
    ]
    compressed = scorer.compress(x)
    threads = torch.get_num_threads()
    # One thread from here on: the transfer spaces, the pair features and the lists are each small, and are computed
    # once per target; extra threads only add contention (on a busy machine each small step waited milliseconds for
    # its pool) and run-to-run jitter.
    torch.set_num_threads(1)
    try:
        if config.transfer_space:
            latent = fit_transfer_spaces(scorer, x, config.seed)
        else:  # the buffers stay zero: every transfer-space feature reads 0
            latent = {task_group(name): scorer.latent_tables() for name in usable}
        with torch.no_grad():
            pairs = {
                b.name: scorer.pair_features(
                    x[b.rows], b.rows, *b.inputs[:2], exclude_task=b.name, latent=latent[task_group(b.name)]
                )
                for b in batches
            }
        for member in scorer.member_modules:
            _train_member(member, compressed, batches, pairs, config)
        scorer.eval()
        measured = [b for b in batches if b.trust >= 1.0] or batches  # calibrate on measured accuracy where there is
        records_confidence = _calibrate(scorer, x, measured, latent)
        _fit_confidence(scorer, table.loc[quality.index], forest_inputs, config, records_confidence)
    finally:
        torch.set_num_threads(threads)
    logger.info("trained the scorer on %d tasks and %d models (%d members)", len(usable), len(seen), config.members)
    return scorer


def left_out_notes(
    records: FinetuneRecords, labels: pd.DataFrame, models: Collection[str], tasks: Mapping[str, TaskTokens]
) -> list[str]:
    """One line for each kind of record the scorer cannot train on, with how many and a few of them: a user whose
    records shrink must learn what was dropped and why, not find a scorer of fewer targets or models.

    ``labels`` are the lists :func:`training_labels` made of ``records``, ``models`` the ids with PTM tokens. The
    kinds: the records of models the candidates do not describe (no tokens), targets without task tokens (a CSV's
    target whose label names the package does not know, or whose modality is not given), targets with fewer than two
    described models (no order to learn), and the tasks with estimator values only that :func:`training_labels` could
    not rank.
    """
    notes = []
    known = labels.model.isin(models)
    if not known.all():
        unknown = sorted(set(labels.model[~known]))
        notes.append(
            f"{len(unknown)} model(s) are in no candidate record, so their {int((~known).sum())} record(s) are left "
            f"out of the scorer's training: {some_of(unknown)}; pass records of them as candidates (--candidates: an "
            "index file or a folder of their repos)"
        )
    targets = sorted(set(labels.target))
    untokened = [t for t in targets if t not in tasks]
    if untokened:
        notes.append(
            f"{len(untokened)} target(s) have no task tokens (label names read as image or text), so they are left out "
            f"of the scorer's training: {some_of(untokened)}; give each its class names (a labels column, e.g. "
            "cat|dog) and its modality (a modality column: image or text)"
        )
    counts = labels.target[known].value_counts()
    single = [t for t in targets if t in tasks and counts.get(t, 0) < 2]
    if single:
        notes.append(
            f"{len(single)} target(s) have fewer than two models among the candidates, no order to learn, so they are "
            f"left out of the scorer's training: {some_of(single)}"
        )
    unranked = sorted(set(records.estimator_scores.target) - set(labels.target))
    if unranked:
        notes.append(
            f"{len(unranked)} task(s) with estimator values only are left out of the scorer's training: "
            f"{some_of(unranked)}; no task of their modality has measured accuracy that their estimators agree with "
            "(fine-tune some: hf-spider build-records --finetune-tasks)"
        )
    return notes


def _train_member(
    member: _Member,
    x: torch.Tensor,
    batches: list[_TaskBatch],
    pairs: dict[str, torch.Tensor],
    config: TrainConfig,
) -> None:
    """Full-batch AdamW on the summed ListMLE of every training task; deterministic given the torch seed."""
    groups = [{"params": list(member.skip.parameters()), "lr": config.skip_lr, "weight_decay": 0.0}]
    if config.content_path:
        rest = [p for name, p in member.named_parameters() if not name.startswith("skip.")]
        groups.append({"params": rest, "lr": config.lr, "weight_decay": config.weight_decay})
    optimiser = torch.optim.AdamW(groups)
    prior = prior_readout()
    total_trust = sum(b.trust for b in batches)
    member.train()
    for _ in tqdm(range(config.epochs), desc="train scorer", name="hf_spider.train", leave=False):
        optimiser.zero_grad()
        # [M, H]: each model encoded once per step (x: compressed tokens); without the content path its output layer
        # stays at zero, so the score is the linear read-out alone and the attention need not run.
        h = member.ptm(x) if config.content_path else None
        loss = torch.zeros(())
        for batch in batches:
            pair = pairs[batch.name]
            if h is None:
                scores = member.skip(pair).squeeze(1)
            else:
                scores = member.score_encoded(h[batch.rows], pair, member.task_summary(*batch.inputs))
            loss = loss + batch.trust * list_mle(scores, batch.target)
        anchor = config.prior_strength * (member.skip.weight - prior).pow(2).sum()
        (loss / total_trust + anchor).backward()
        optimiser.step()
    member.eval()


@torch.no_grad()
def _calibrate(
    scorer: TransferScorer, x: torch.Tensor, batches: list[_TaskBatch], latent: Mapping[str, LatentTables]
) -> float:
    """Fit the read-out -> percentile map on the leave-one-out training lists; returns the mean rank correlation of
    the read-out with the truth on them (the confidence of record-based scores)."""
    from scipy.stats import spearmanr

    scores, truth, correlations = [], [], []
    for b in batches:
        s = scorer(x[b.rows], b.rows, *b.inputs, exclude_task=b.name, latent=latent[task_group(b.name)])
        s = s.double().numpy()
        percentile = pd.Series(b.target.double().numpy()).rank(pct=True).to_numpy()
        scores.append(s)
        truth.append(percentile)
        if np.ptp(s) > 0 and np.ptp(percentile) > 0:  # a list whose accuracies all tie has no order to agree with
            correlations.append(float(spearmanr(s, percentile)[0]))
    s_all, p_all = np.concatenate(scores), np.concatenate(truth)
    spread = float(np.var(s_all))
    slope = float(np.cov(s_all, p_all, bias=True)[0, 1] / spread) if spread > 0 else 0.0
    slope = max(slope, 1e-6)  # monotone: calibration never reorders a list
    scorer.calibration.copy_(torch.tensor([slope, float(p_all.mean() - slope * s_all.mean())]))
    return float(np.mean(correlations)) if correlations else 0.0


def _cold_start_inputs(tokens: PTMTokens, quality: pd.Series) -> np.ndarray:
    """``[M, HEAD_DIM + 2]`` forest inputs of the models of ``quality`` (their mean percentiles): token heads, and
    the mean percentile of each model's nearest ancestor among the others (what an unseen descendant reads)."""
    position = {m: i for i, m in enumerate(tokens.model_ids)}
    ancestor = np.zeros(len(quality), dtype=np.float32)
    has = np.zeros(len(quality), dtype=np.float32)
    for i, model in enumerate(quality.index):
        parent = next((a for a in tokens.ancestors[position[model]] if a in quality.index and a != model), None)
        if parent is not None:
            ancestor[i], has[i] = quality[parent], 1.0
    head = torch.from_numpy(np.ascontiguousarray(tokens.features[[position[m] for m in quality.index], :HEAD_DIM]))
    return cold_start_features(head, torch.from_numpy(ancestor), torch.from_numpy(has)).numpy()


def _fit_confidence(
    scorer: TransferScorer,
    table: pd.DataFrame,
    inputs: np.ndarray,
    config: TrainConfig,
    records_confidence: float,
) -> None:
    """Each evidence kind's confidence, on the scale of the records' one (the mean over training tasks of a rank
    correlation with the task's accuracy percentiles): for the cold-start kinds, of cross-fitted forest estimates
    (every seen model scored by a forest that never saw it) within the models the kind describes; for ``size``, of
    the parameter count itself."""
    from scipy.stats import spearmanr

    truth = table.to_numpy(dtype=np.float64)  # [M, T] percentiles, NaN where not recorded
    quality = np.nanmean(truth, axis=1)
    estimate = np.full(len(truth), float(quality.mean()))
    if config.forest_trees and len(truth) >= 2 * CROSS_FIT_FOLDS:
        folds = np.random.default_rng(config.seed).permutation(len(truth)) % CROSS_FIT_FOLDS
        for fold in range(CROSS_FIT_FOLDS):
            train = folds != fold
            forest = fit_forest(inputs[train], quality[train], seed=config.seed, trees=config.forest_trees)
            estimate[~train] = _predict(forest, inputs[~train])

    def correlation(predicted: np.ndarray, mask: np.ndarray) -> float:
        per_task = []
        for column in truth.T:
            rows = mask & ~np.isnan(column)
            if rows.sum() >= 3 and np.ptp(predicted[rows]) > 0 and np.ptp(column[rows]) > 0:
                per_task.append(float(spearmanr(predicted[rows], column[rows])[0]))
        return max(0.0, float(np.mean(per_task))) if per_task else 0.0

    everyone = np.ones(len(truth), dtype=bool)
    overall = correlation(estimate, everyone)
    confidence = dict.fromkeys(EVIDENCE_KINDS, overall)
    confidence["records"] = max(0.0, records_confidence)
    kinds = np.array(evidence_of_head(inputs[:, :HEAD_DIM]))
    kinds[inputs[:, HEAD_DIM + COLD_START_EXTRA.index("has_ancestor")] > 0] = "lineage"
    for kind in ("lineage", "facts", "content"):
        if (kinds == kind).sum() >= MIN_GROUP:
            confidence[kind] = correlation(estimate, kinds == kind)
    has_size = inputs[:, SCALAR_NAMES.index("has_num_parameters")] > 0
    confidence["size"] = correlation(inputs[:, SCALAR_NAMES.index("log_num_parameters")], has_size)
    scorer.evidence_confidence.copy_(torch.tensor([confidence[k] for k in EVIDENCE_KINDS]))
    logger.info("confidence by evidence: %s", {k: round(v, 2) for k, v in confidence.items()})


def _predict(forest: ForestArrays, inputs: np.ndarray) -> np.ndarray:
    return predict_forest(*forest.tensors(), torch.from_numpy(inputs.astype(np.float32))).numpy()


def _load_forest(scorer: TransferScorer, forest: ForestArrays) -> None:
    buffers = (scorer.forest_feature, scorer.forest_threshold, scorer.forest_left, scorer.forest_right)
    for buffer, tensor in zip((*buffers, scorer.forest_value), forest.tensors(), strict=True):
        buffer.copy_(tensor)


def _fill_task_embeddings(scorer: TransferScorer, tasks: Mapping[str, TaskTokens]) -> None:
    """Write the training tasks' mean label-name embeddings and mean class prototypes (normalised), for the
    task-similarity attention."""
    for i, name in enumerate(scorer.train_tasks):
        for buffer, value in (
            (scorer.task_embeddings, tasks[name].label_embeddings),
            (scorer.task_prototypes, tasks[name].prototypes),
        ):
            if value is not None and len(value):
                vector = np.asarray(value, dtype=np.float32).mean(0)
                buffer[i] = torch.from_numpy(vector / max(float(np.linalg.norm(vector)), 1e-12))


def fit_transfer_spaces(scorer: TransferScorer, x: torch.Tensor, seed: int) -> dict[str, LatentTables]:
    """Factorise the collaborative table into the scorer's transfer space; and, for training, held-out spaces keyed
    by task group (:func:`~hf_spider.scorer.pair.task_group`).

    The scorer keeps the space of every training task. While a task is trained on, its features come from a space
    factorised without its group's columns, as a new task's will: a space fitted to the task's own records would make
    the transfer-space score look more trustworthy in training than it can be at test time.

    Each held-out space is a full refit (models x tasks), so one per group would grow with the square of the number
    of targets (a team's CSV makes every target its own group: 1,600 targets took 110 s of refits). The groups are
    therefore dealt, in order of appearance, into at most :data:`TRANSFER_SPACE_FOLDS` folds, and a group's space is
    the one fitted without its whole fold: still without its own records, and at most that many refits. Up to that
    many groups every fold is one group, the leave-one-group-out of before (the shipped scorer's 23 targets, the
    zoo's 18 groups). Each product is one matrix product (:func:`~hf_spider.rankers.fennec.masked_grams`), and BLAS
    runs on one thread, since thousands of small products and solves only contend for a pool (ten times slower on a
    busy machine) and one thread sums in the same order on every machine.
    """
    from threadpoolctl import threadpool_limits

    values = scorer.collab.double().numpy()
    arch = with_bias(x[:, archi2vec_slice()].double().numpy())

    def fit(table: np.ndarray) -> LatentTables:
        space = factorise(table, arch, rank=scorer.latent_rank, seed=seed)
        return LatentTables(
            model_x=torch.from_numpy(space.model_x).float(), task_v=torch.from_numpy(space.task_v).float()
        )

    groups = np.array([task_group(t) for t in scorer.train_tasks])
    fold_of = {group: i % TRANSFER_SPACE_FOLDS for i, group in enumerate(dict.fromkeys(groups.tolist()))}
    folds = np.array([fold_of[g] for g in groups.tolist()])
    with threadpool_limits(limits=1):
        full = fit(values)
        spaces = [
            fit(np.where(folds == fold, np.nan, values)) for fold in range(min(len(fold_of), TRANSFER_SPACE_FOLDS))
        ]
    scorer.latent.copy_(full.model_x)
    scorer.task_latent.copy_(full.task_v)
    return {group: spaces[fold] for group, fold in fold_of.items()}


def sample_encoders(tasks: Mapping[str, TaskTokens]) -> dict[str, str] | None:
    """The encoder of each modality's class prototypes among the training tasks (``id`` of ``id@revision``), so a
    query task is encoded alike; ``None`` when no training task has prototypes.

    Raises:
        InvalidIndexError: the tasks of one modality were encoded by different encoders.
    """
    encoders: dict[str, set[str]] = {}
    for task in tasks.values():
        modality = task.description.modality
        if task.prototypes is not None and modality in task.encoder:
            encoders.setdefault(modality, set()).add(task.encoder[modality].rsplit("@", 1)[0])
    mixed = {m: sorted(e) for m, e in encoders.items() if len(e) > 1}
    if mixed:
        raise InvalidIndexError(f"training tasks of one modality were encoded by different encoders {mixed}; re-encode")
    return {m: e.pop() for m, e in encoders.items()} or None


def _proto_dim(tasks: Mapping[str, TaskTokens], default: int) -> int:
    widths = {int(t.prototypes.shape[-1]) for t in tasks.values() if t.prototypes is not None}
    if len(widths) > 1:
        raise InvalidIndexError(
            f"training tasks have prototypes of different widths {sorted(widths)}; encode them with one encoder"
        )
    return widths.pop() if widths else default
