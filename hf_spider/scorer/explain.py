"""What a scorer's score of each candidate rests on: the seen models' calibrated read-out, the cold-start forest for
the others, a fine-tune's inherited task profile, and the evidence kind, confidence and one-line reason per candidate.

Kept apart from the network (:mod:`hf_spider.scorer.model`): this combines the scorer's paths per candidate and reads
its tables to explain a score, with no weights of its own; :meth:`TransferScorer.explain_tokens
<hf_spider.scorer.model.TransferScorer.explain_tokens>` calls it, and the numpy twin (:mod:`hf_spider.scorer.inference`)
mirrors it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..outputs.shortlist import EVIDENCE_KINDS
from ..rankers.base import Explained, evidence_detail
from ..tokens.ptm import HEAD_DIM, PTMTokens
from .inputs import evidence_of_head

if TYPE_CHECKING:
    from ..tokens.task import TaskTokens
    from .model import TransferScorer


@torch.no_grad()
def explain_tokens(scorer: TransferScorer, tokens: PTMTokens, task: TaskTokens) -> Explained:
    """Expected percentile of each tokenised candidate, with its evidence, confidence and a one-line reason.

    * ``records``: a model seen in training, scored by its learned token (calibrated read-out);
    * ``lineage``: a model with a seen ancestor (:attr:`PTMTokens.ancestors`): the cold-start forest, which
      reads the ancestor's mean percentile beside the model's own token head, moved by the ancestor's task
      profile (:func:`_task_profile`);
    * ``facts`` / ``content`` / ``size``: the cold-start forest, labelled by the strongest part of the head it
      could read (ImageNet facts or pre-training source; architecture family; size only).
    """
    scorer.check_tokens(tokens)
    was_training = scorer.training
    scorer.eval()
    features = torch.from_numpy(np.ascontiguousarray(tokens.features, dtype=np.float32)).to(scorer.device)
    rows = scorer.rows_of(tokens.model_ids)
    has_record = (rows >= 0) & _has_record(scorer, rows)
    ancestor = _seen_ancestors(scorer, tokens, has_record)  # [N], -1 where none
    inputs = scorer.task_inputs(task)
    scores = torch.zeros(len(features), device=scorer.device)
    if bool(has_record.any()):
        scores[has_record] = scorer.expected(scorer(features[has_record], rows[has_record], *inputs))
    unseen = ~has_record
    if bool(unseen.any()):
        head = features[:, :HEAD_DIM][unseen]  # the head alone: no copy of the text parts
        scores[unseen] = scorer.cold_start(head, ancestor[unseen])
    inherits = unseen & (ancestor >= 0)
    if bool(inherits.any()):
        profile = _task_profile(scorer, features[inherits], ancestor[inherits], inputs)
        scores[inherits] = (scores[inherits] + profile).clamp(0.0, 1.0)
    scorer.train(was_training)
    kinds = _evidence(features, has_record, ancestor >= 0)
    confidence = scorer.evidence_confidence.cpu().numpy()[[EVIDENCE_KINDS.index(k) for k in kinds]]
    details = tuple(_detail(scorer, tokens, i, kind, int(ancestor[i])) for i, kind in enumerate(kinds))
    return Explained(
        scores=scores.cpu().numpy().astype(np.float64),
        evidence=kinds,
        confidence=confidence.astype(np.float64),
        details=details,
    )


def _task_profile(
    scorer: TransferScorer,
    x: torch.Tensor,
    ancestor: torch.Tensor,
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """``[N]`` how much better than its usual the nearest seen ancestor is expected to do on this task: its
    calibrated read-out for the task minus its read-out for a task that says nothing (every training task weighed
    alike). The cold-start forest reads the ancestor's mean only; a fine-tune inherits its ancestor's strengths and
    weaknesses per task as well."""
    device = scorer.device
    neutral = (
        torch.zeros(0, scorer.text_dim, device=device),
        torch.zeros(0, scorer.proto_dim, device=device),
        torch.zeros(scorer.stats_dim, device=device),
        torch.zeros(1, dtype=torch.bool, device=device),
    )
    return scorer.expected(scorer(x, ancestor, *inputs)) - scorer.expected(scorer(x, ancestor, *neutral))


def _has_record(scorer: TransferScorer, rows: torch.Tensor) -> torch.Tensor:
    """``[N]`` whether each (seen) row holds at least one training-task result."""
    if len(scorer.collab) == 0:
        return torch.zeros_like(rows, dtype=torch.bool)
    return (~torch.isnan(scorer.collab)).any(1)[rows.clamp(min=0)]


def _seen_ancestors(scorer: TransferScorer, tokens: PTMTokens, has_record: torch.Tensor) -> torch.Tensor:
    """``[N]`` table row of each unseen candidate's nearest ancestor with records, ``-1`` where none."""
    found = np.full(len(tokens.model_ids), -1, dtype=np.int64)
    recorded = (~torch.isnan(scorer.collab)).any(1).cpu().numpy() if len(scorer.collab) else np.zeros(0, bool)
    for i, lineage in enumerate(tokens.ancestors):
        if bool(has_record[i]):
            continue
        for ancestor in lineage:
            row = scorer.row_of(ancestor)
            if row >= 0 and recorded[row]:
                found[i] = row
                break
    return torch.from_numpy(found).to(scorer.device)


def _evidence(x: torch.Tensor, has_record: torch.Tensor, inherits: torch.Tensor) -> tuple[str, ...]:
    """Evidence kind of each candidate (:data:`EVIDENCE_KINDS`): records, lineage, else what its head holds."""
    head = evidence_of_head(x.cpu().numpy())
    return tuple(
        "records" if record else "lineage" if lineage else kind
        for kind, record, lineage in zip(head, has_record.tolist(), inherits.tolist(), strict=True)
    )


def _detail(scorer: TransferScorer, tokens: PTMTokens, index: int, kind: str, ancestor: int) -> str:
    """A one-line reason for a candidate's score, shown in the shortlist."""
    row = scorer.row_of(tokens.model_ids[index])
    records = 0 if kind != "records" or row < 0 else int((~torch.isnan(scorer.collab[row])).sum())
    facts = tokens.facts[index] if index < len(tokens.facts) else None
    return evidence_detail(kind, records=records, ancestor=scorer.model_ids[ancestor], facts=facts)
