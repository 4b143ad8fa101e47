"""One evaluation harness for every ranker and every figure hf-spider reports.

* :mod:`~hf_spider.evaluation.protocols`: what a ranker may see and what it ranks (leave one target out, leave a
  group out, cold start, mixed pool);
* :mod:`~hf_spider.evaluation.metrics`: weighted tau, rel@k, the target weights and the per-target tables;
* :mod:`~hf_spider.evaluation.evaluate`: fit and score a ranker under the protocols, and ``hf-spider evaluate`` on a
  team's own records;
* :mod:`~hf_spider.evaluation.report`: what ``hf-spider evaluate`` shows (tables, recommendations, a plot).

Used by ``hf-spider evaluate``, ``selector.evaluate``, the TransferGraph and zoo benchmarks and the fusion validation
(:mod:`hf_spider.rerank.validation`).
"""

from __future__ import annotations

from .evaluate import PLACEMENT, evaluate, evaluate_protocols, evaluate_records
from .metrics import METRICS, rel_at_k, summarise, target_weight, weighted_tau
from .protocols import PROTOCOLS, Split, cold_start_splits, leave_group_out_splits, loto_splits, mixed_pool_splits
from .report import Evaluation

__all__ = [
    "METRICS",
    "PLACEMENT",
    "PROTOCOLS",
    "Evaluation",
    "Split",
    "cold_start_splits",
    "evaluate",
    "evaluate_protocols",
    "evaluate_records",
    "leave_group_out_splits",
    "loto_splits",
    "mixed_pool_splits",
    "rel_at_k",
    "summarise",
    "target_weight",
    "weighted_tau",
]
