"""The evaluation protocols: what a ranker may see when it is fitted, and what it then ranks.

Ground truth is the best fine-tuning accuracy of a (model, target) pair. Each protocol turns records into
:class:`Split` steps; :func:`hf_spider.evaluation.evaluate.evaluate` fits a fresh ranker per step and scores it.

* **loto**, leave one target out (:func:`loto_splits`): nothing recorded on the target reaches ``fit`` (no accuracy,
  no estimator score, no task tokens); the models recorded on the target are ranked.
* **leave a group out** (:func:`leave_group_out_splits`): as loto, but every target of the held-out target's group is
  hidden too (targets sampled from one dataset, or one MTEB task family), so a sibling of the target never teaches
  the ranker what the target looks like.
* **cold_start** (:func:`cold_start_splits`): also holds out a quarter of the models entirely (``folds`` folds over
  the recorded models, seeded); the ranker never sees any of their records and ranks them, each fold on its own,
  from content alone.
* **mixed_pool** (:func:`mixed_pool_splits`): the same folds and fits as cold start, but the held-out models of a
  fold are ranked together with the seen models recorded on the target, in one list, as a crawl of the Hub gives them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import InvalidRecordsError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..tokens.task import TaskTokens

#: The protocols of ``hf-spider evaluate``, in the order they are run and shown.
PROTOCOLS = ("loto", "cold_start", "mixed_pool")


@dataclass(frozen=True)
class Split:
    """What ``fit`` may see for one evaluation step, and what is then ranked.

    ``held_out``: models hidden from ``fit`` entirely (cold start and mixed pool), empty for leave one target out.
    """

    target: str
    train_records: FinetuneRecords
    train_tasks: dict[str, TaskTokens]
    test_models: list[ModelRecord]
    truth: pd.Series  # accuracy on the target, indexed by model id
    held_out: frozenset[str] = frozenset()

    def held_out_part(self) -> Split:
        """The same step restricted to its held-out models: what cold start ranks."""
        return self.restricted(self.held_out)

    def restricted(self, keep: Collection[str]) -> Split:
        """The same step (same training data) ranking only the test models in ``keep``: the held-out part of a fold,
        or the models a forward-pass estimator scored (a baseline is reported on the models it scored)."""
        kept = set(keep)
        return replace(
            self,
            test_models=[m for m in self.test_models if m.repo_id in kept],
            truth=self.truth[self.truth.index.isin(kept)],
        )


def loto_splits(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
) -> list[Split]:
    """Leave-one-target-out: for each target, every record and task except the target's; rank its recorded models."""
    return leave_group_out_splits(records, models, tasks, targets, groups={t: t for t in targets})


def leave_group_out_splits(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
    *,
    groups: Mapping[str, str],
) -> list[Split]:
    """For each target, hide every record and task of its group (``groups``: target -> group label; a target not in
    ``groups`` is its own group), then rank the target's recorded models.

    With every target its own group this is leave one target out (:func:`loto_splits`).
    """
    by_id = {m.repo_id: m for m in models}
    group_of = {name: groups.get(name, name) for name in {*records.accuracy.target, *tasks, *targets}}
    splits = []
    for target in targets:
        hidden = {name for name, group in group_of.items() if group == group_of[target]}
        truth = _truth(records, target, by_id)
        splits.append(
            Split(
                target=target,
                train_records=_without_targets(records, hidden),
                train_tasks={name: t for name, t in tasks.items() if name not in hidden},
                test_models=[by_id[m] for m in truth.index],
                truth=truth,
            )
        )
    return splits


def mixed_pool_splits(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
    *,
    folds: int = 4,
    seed: int = 0,
) -> list[Split]:
    """Leave one target out *and* one fold of the models out; rank every model recorded on the target in one list.

    The folds split the models recorded anywhere in ``records`` (and known to ``models``) by a seeded permutation, as
    :func:`cold_start_splits` does; a (target, fold) step with no held-out model on the target is left out.
    """
    by_id = {m.repo_id: m for m in models}
    recorded = sorted(set(records.accuracy.model) & set(by_id))
    fold_of = dict(zip(recorded, np.random.default_rng(seed).permutation(len(recorded)) % folds, strict=True))
    splits = []
    for target in targets:
        truth = _truth(records, target, by_id)
        base = records.without_target(target)
        for fold in range(folds):
            held = frozenset(m for m, f in fold_of.items() if f == fold)
            if not truth.index.isin(held).any():
                continue
            splits.append(
                Split(
                    target=target,
                    train_records=FinetuneRecords(
                        base.accuracy[~base.accuracy.model.isin(held)].reset_index(drop=True),
                        base.estimator_scores[~base.estimator_scores.model.isin(held)].reset_index(drop=True),
                    ),
                    train_tasks={name: t for name, t in tasks.items() if name != target},
                    test_models=[by_id[m] for m in truth.index],
                    truth=truth,
                    held_out=held,
                )
            )
    return splits


def cold_start_splits(
    records: FinetuneRecords,
    models: Sequence[ModelRecord],
    tasks: Mapping[str, TaskTokens],
    targets: Sequence[str],
    *,
    folds: int = 4,
    seed: int = 0,
) -> list[Split]:
    """Leave one target out *and* one fold of the models (``1 / folds`` of them, all their records) out; rank the
    fold's models recorded on the target (steps with fewer than 2 of them are left out)."""
    parts = [s.held_out_part() for s in mixed_pool_splits(records, models, tasks, targets, folds=folds, seed=seed)]
    return [s for s in parts if len(s.truth) >= 2]


def normalise_protocols(protocols: Sequence[str]) -> list[str]:
    """Protocol names as :data:`PROTOCOLS` spells them (``cold-start`` -> ``cold_start``), checked, in table order."""
    names = [p.strip().lower().replace("-", "_") for p in protocols if p.strip()]
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown or not names:
        raise InvalidRecordsError(
            f"unknown protocol(s) {', '.join(unknown) or '(none given)'}; pick from loto, cold-start, mixed-pool"
        )
    return [p for p in PROTOCOLS if p in names]


def _truth(records: FinetuneRecords, target: str, by_id: Mapping[str, ModelRecord]) -> pd.Series:
    rows = records.accuracy[(records.accuracy.target == target) & records.accuracy.model.isin(by_id)]
    return rows.groupby("model").accuracy.max()


def _without_targets(records: FinetuneRecords, hidden: set[str]) -> FinetuneRecords:
    return FinetuneRecords(
        records.accuracy[~records.accuracy.target.isin(hidden)].reset_index(drop=True),
        records.estimator_scores[~records.estimator_scores.target.isin(hidden)].reset_index(drop=True),
    )
