"""``SpiderRanker``: the Model Spider scorer behind the :class:`~hf_spider.rankers.base.TrainableRanker` interface.

``fit`` trains a fresh :class:`TransferScorer` from records (the benchmark calls it once per held-out target);
``score`` builds the candidates' PTM tokens and makes one batched scorer call. The shipped default scorer lives in
``hf_spider/data/scorer`` and is rebuilt by ``python scripts/train_default_scorer.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ScorerConfigError
from ..finetune_records import FinetuneRecords
from ..hub.records import ModelRecord
from ..hub.sizes import one_size_request
from ..rankers.base import Explained
from ..tokens.pool_tokens import precomputed_tokens
from ..tokens.ptm import ptm_tokens
from ..tokens.task import TaskTokens
from .checks import SCORER_FILES, check_local_source
from .model import TransferScorer
from .paths import default_scorer_path
from .task_aware import FILE_NAME, TaskAwareModel, read_for_task, task_aware_beside
from .train import TrainConfig, train_scorer


@dataclass
class SpiderRanker:
    """Ranks candidates with a :class:`TransferScorer`; trainable from fine-tuning records.

    Args:
        scorer: a trained scorer; ``None`` until :meth:`fit` (or use :meth:`from_pretrained`).
        config: training hyper-parameters used by :meth:`fit`.
        text_encoder: the text encoder of the PTM tokens (must be the one the scorer was trained with).
        task_aware: the task-aware model (:mod:`hf_spider.scorer.task_aware`), saved beside a scorer as
            ``task_aware.npz`` in its folder or Hub repo (``hf-spider train-scorer`` writes both): it scores the
            models it has records of and the scorer has not (MTEB's encoders) from the task's description, label
            names, samples and name.
    """

    scorer: TransferScorer | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    text_encoder: str | None = None
    name: str = "hf_spider"
    task_aware: TaskAwareModel | None = None

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike[str] | None = None, **kwargs: object) -> SpiderRanker:
        """Load a scorer from a local folder or a Hub repo (default: the shipped scorer). ``kwargs`` go to the mixin.

        From the Hub, the scorer's files and the task-aware model beside them are sized in one request before any is
        downloaded (:func:`~hf_spider.hub.sizes.one_size_request`).
        """
        source = str(path_or_repo_id) if path_or_repo_id is not None else str(default_scorer_path())
        check_local_source(source)
        from safetensors import SafetensorError

        revision = kwargs.get("revision")
        with one_size_request(source, revision if isinstance(revision, str) else None, (*SCORER_FILES, FILE_NAME)):
            try:
                scorer = TransferScorer.from_pretrained(source, **kwargs)  # type: ignore[arg-type]
            except ScorerConfigError:
                raise
            # no such folder, repo or file; an invalid id; offline without a copy; weights that are not safetensors
            except (OSError, ValueError, SafetensorError) as exc:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ScorerConfigError(
                    f"cannot load a scorer from '{source}' ({reason}); pass the folder `hf-spider train-scorer` wrote "
                    "or the Hub repo it was pushed to"
                ) from exc
            hub = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
            task_aware = task_aware_beside(source, **hub)  # type: ignore[arg-type]
        return cls(scorer=scorer, task_aware=task_aware)

    @classmethod
    def untrained(cls, seed: int = 0) -> SpiderRanker:
        """A ranker to :meth:`fit`, with the default training settings and ``seed`` (the evaluation protocols)."""
        return cls(config=TrainConfig(seed=seed))

    def fit(
        self, records: FinetuneRecords, models: Sequence[ModelRecord], tasks: Mapping[str, TaskTokens]
    ) -> SpiderRanker:
        """Train a fresh scorer on ``records`` (nothing else is read: no target data leaks in)."""
        tokens = ptm_tokens(models, text_encoder=self.text_encoder)
        self.scorer = train_scorer(
            records, models, tasks, config=self.config, tokens=tokens, text_encoder=self.text_encoder
        )
        return self

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> np.ndarray:
        """``[len(candidates)]`` expected accuracy percentiles, one batched pass."""
        return self.explain(task, candidates).scores

    def explain(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> Explained:
        """Expected percentiles with what each rests on (:meth:`TransferScorer.explain_tokens`); the default pool's
        tokens are read precomputed (:mod:`hf_spider.tokens.pool_tokens`)."""
        if self.scorer is None:
            raise RuntimeError("SpiderRanker has no scorer: call fit() or SpiderRanker.from_pretrained() first")
        tokens = precomputed_tokens(candidates, text_encoder=self.scorer.text_encoder)
        explained = (
            self.scorer.explain(task, candidates) if tokens is None else self.scorer.explain_tokens(tokens, task)
        )
        if self.task_aware is None:
            return explained
        return read_for_task(
            explained, task, candidates, self.task_aware, self.scorer.model_ids, self.scorer.text_encoder
        )
