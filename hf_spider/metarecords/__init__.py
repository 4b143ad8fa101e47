"""Meta-training records: many sampled tasks, each labelled by every candidate's forward pass (and, on a budget,
by short fine-tunes), the data Model Spider trains its scorer on.

``build_records`` builds a records folder (``hf-spider build-records``, or over several processes
``accelerate launch -m hf_spider.metarecords``); ``load_meta_records`` reads one back from a folder or a Hub dataset
repo; ``push_meta_records`` uploads one. The format is documented in ``docs/records.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .build import DEFAULT_ESTIMATORS, BuildSummary, build_records
    from .finetune import FinetuneProtocol, finetune_accuracy
    from .hub import load_meta_records, push_meta_records
    from .labelling import Budget
    from .store import MetaRecords, PairRecord, RecordsFolder, read_meta_records
    from .tasks import DatasetPool, TaskSampling, TrainingTask, draw_pool, sample_tasks

_EXPORTS = {
    "DEFAULT_ESTIMATORS": "build",
    "Budget": "labelling",
    "BuildSummary": "build",
    "build_records": "build",
    "FinetuneProtocol": "finetune",
    "finetune_accuracy": "finetune",
    "load_meta_records": "hub",
    "push_meta_records": "hub",
    "MetaRecords": "store",
    "PairRecord": "store",
    "RecordsFolder": "store",
    "read_meta_records": "store",
    "DatasetPool": "tasks",
    "TaskSampling": "tasks",
    "TrainingTask": "tasks",
    "draw_pool": "tasks",
    "sample_tasks": "tasks",
}
__all__ = [
    "DEFAULT_ESTIMATORS",
    "Budget",
    "BuildSummary",
    "DatasetPool",
    "FinetuneProtocol",
    "MetaRecords",
    "PairRecord",
    "RecordsFolder",
    "TaskSampling",
    "TrainingTask",
    "build_records",
    "draw_pool",
    "finetune_accuracy",
    "load_meta_records",
    "push_meta_records",
    "read_meta_records",
    "sample_tasks",
]

# Import lazily: ``import hf_spider.metarecords`` must not import torch, transformers or datasets.
__getattr__ = lazy_exports(__name__, _EXPORTS)
