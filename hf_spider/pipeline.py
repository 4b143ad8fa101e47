"""``pipeline("model-selection")``: hf-spider as a transformers pipeline, the way Hub users already call models.

``preprocess`` reads the task (a ``datasets`` object, a local path, a Hub dataset id, or label names) with
:func:`hf_spider.ranking.read_task`, exactly as the CLI and the Space do (label-name tokens: no sample encoder, so it
runs offline), and gathers the candidates (the bundled index, an index file, repo ids, or a Hub query);
``_forward`` makes the one ranker call and touches no network; ``postprocess`` re-ranks the top ``rerank`` with real
forward passes when asked, keeps the accuracy-versus-size front with ``pareto=True`` and cuts to ``top_k``.
The shared logic lives in :mod:`hf_spider.ranking`, so the CLI, this pipeline and the Space rank identically.

This module is callable (``hf_spider.pipeline("model-selection")``) as well as importable
(``hf_spider.pipeline.ModelSelectionPipeline``): see the end of the file.

Example::

    >>> import hf_spider
    >>> selector = hf_spider.pipeline("model-selection")
    >>> shortlist = selector({"labels": ["negative", "positive"], "modality": "text"}, top_k=3)
    >>> len(shortlist), shortlist[0].rank
    (3, 1)
"""

from __future__ import annotations

import logging
import math
import os
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pandas as pd
import torch
from transformers import AutoConfig, Pipeline, PretrainedConfig

from .errors import InvalidDatasetError, ScorerConfigError
from .hub.records import ModelRecord
from .outputs.pareto import pareto_front
from .outputs.shortlist import Shortlist
from .rankers.base import Ranker
from .ranking import CandidateFilter, load_candidates, rank, read_task, select_candidates, task_reading
from .rerank.budget import DEFAULT_BUDGET_SECONDS
from .tokens.task import MODALITIES, TaskDescription, TaskTokens

logger = logging.getLogger(__name__)

TASK = "model-selection"
DEFAULT_TOP_K = 10
_PREPROCESS_KEYS = (
    "split",
    "config",
    "label_column",
    "input_column",
    "candidates",
    "models",
    "candidate_filter",
    "description",
)
_FILTER_KEYS = (
    "max_parameters",
    "licenses",
    "libraries",
    "include_gated",
    "drop_unknown",
    "drop_test_repos",
    "created_after",
)


class _RankerModule(torch.nn.Module):
    """Gives a plain :class:`Ranker` the ``device`` and ``to()`` that ``transformers.Pipeline`` expects of a model."""

    def __init__(self, ranker: Ranker) -> None:
        super().__init__()
        self.ranker = ranker
        self.name = ranker.name

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")  # the wrapped rankers are numpy code

    def score(self, task: TaskTokens, candidates: Sequence[ModelRecord]) -> Any:
        return self.ranker.score(task, candidates)


@dataclass(frozen=True)
class _Prepared:
    """What ``preprocess`` hands on: the tokens, the filtered candidates and their filter, the task's samples
    for re-ranking (the loaded split, or the input itself when it has none), and the size of the whole pool."""

    tokens: TaskTokens
    candidates: list[ModelRecord]
    candidate_filter: CandidateFilter
    source: Any
    pool_size: int
    local_dir: str | None = None  # a folder of candidate repos: stage two reads their weights from it


class ModelSelectionPipeline(Pipeline):
    """Rank pre-trained models for a classification task (Model Spider, stage one, optionally stage two).

    Inputs (one task; a list of them ranks several and returns a list):
        a ``datasets`` object, a local path (image folder, CSV / JSON / Parquet, ``save_to_disk`` folder), a Hub
        dataset id, ``{"dataset": ..., "split": ...}``, ``{"labels": [...], "modality": "text"}`` for a task known by
        its class names, ``{"description": "...", "modality": "text"}`` for a task known by its words alone, or a
        :class:`TaskDescription` / :class:`TaskTokens`.

    Options (at construction or per call; call values win):
        split, config, label_column, input_column: which part of the dataset.
        description: what the task is in words; it counts beside the label names and samples (``hf-spider rank
            --task``; a ``"description"`` key of a task dict does the same).
        candidates: ``"bundled"`` (default), an index file, a list of repo ids, a list of :class:`ModelRecord`, or a
            Hub query dict (``pipeline_tag``, ``library``, ``search``, ``sort``, ``limit``, ``author``).
        models: repo ids to keep from the pool.
        max_parameters, licenses, libraries, include_gated, drop_unknown, drop_test_repos, created_after: filters
            (gated models are left out by default; ``created_after`` is a day, ``"2024-01-01"`` or a
            :class:`datetime.date`; a model whose size, license or creation date a filter cannot check, or that looks
            like a test or random-weight repo, is kept and noted unless ``drop_unknown`` / ``drop_test_repos``), or a
            ready :class:`CandidateFilter` as ``candidate_filter``.
        top_k: how many to return (default 10; ``None`` or 0 for all); candidates that failed re-ranking are listed
            after them, with the reason.
        rerank_budget: seconds for re-ranking the top candidates with real forward passes on the task's samples, as
            ``hf-spider rank --dataset`` does (default :data:`~hf_spider.rerank.budget.DEFAULT_BUDGET_SECONDS`;
            ``0``: stage one alone). A task known by its label names only is never re-ranked.
        rerank: re-rank exactly the top ``rerank`` models, with no time budget (:mod:`hf_spider.rerank`).
        pareto: keep only the accuracy-versus-size front.

    Returns:
        A :class:`Shortlist`: prints as a table, converts with ``to_pandas`` / ``to_json`` / ``to_markdown`` /
        ``to_csv``, plots with ``plot_scores`` / ``plot_size_vs_score``, and pushes with ``push_to_hub_collection``.
    """

    # No tokenizer or processor: the scorer reads task tokens, which preprocess builds itself.
    _load_tokenizer = False  # type: ignore[assignment]
    _load_feature_extractor = False  # type: ignore[assignment]
    _load_image_processor = False  # type: ignore[assignment]
    _load_processor = False  # type: ignore[assignment]
    _load_video_processor = False  # type: ignore[assignment]

    def __init__(self, model: Any, **kwargs: Any) -> None:
        if not isinstance(model, Ranker):
            raise ScorerConfigError(
                f"model-selection needs a scorer or ranker (with .name and .score), got {type(model).__name__}; "
                "pass model=<TransferScorer, its repo id or folder> or leave it out for the default ranker"
            )
        if not isinstance(model, torch.nn.Module) or not hasattr(model, "device"):
            model = _RankerModule(model)
        super().__init__(model=model, **kwargs)

    def _sanitize_parameters(  # type: ignore[override]
        self,
        top_k: int | None = None,
        rerank: int | None = None,
        rerank_budget: float | None = None,
        pareto: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        unknown = set(kwargs) - set(_PREPROCESS_KEYS) - set(_FILTER_KEYS)
        if unknown:
            raise ScorerConfigError(
                f"unknown model-selection option(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join((*_PREPROCESS_KEYS, *_FILTER_KEYS, 'top_k', 'rerank', 'rerank_budget', 'pareto'))}"
            )
        if "candidate_filter" in kwargs and any(k in kwargs for k in _FILTER_KEYS):
            raise ScorerConfigError(
                "candidate_filter= clashes with max_parameters / licenses / libraries / include_gated; "
                "pass one or the other"
            )
        preprocess = {k: v for k, v in kwargs.items() if k in _PREPROCESS_KEYS}
        filters = {k: v for k, v in kwargs.items() if k in _FILTER_KEYS}
        models = preprocess.get("models")
        if models is not None and (isinstance(models, str) or not _are_strings(models)):
            raise ScorerConfigError(f"models must be a list of repo ids (strings), got {models!r}")
        if filters:
            size = filters.get("max_parameters")
            if size is not None and (not _is_number(size) or size < 0):
                raise ScorerConfigError(f"max_parameters must be a number >= 0, got {size!r}; e.g. 1e8")
            for name in ("licenses", "libraries"):
                if isinstance(filters.get(name), str):
                    filters[name] = [filters[name]]
                if filters.get(name) is not None:
                    if not _are_strings(filters[name]):
                        raise ScorerConfigError(f"{name} must be a string or a list of strings, got {filters[name]!r}")
                    filters[name] = frozenset(filters[name])
            after = filters.get("created_after")
            if after is not None and not isinstance(after, str | date):
                raise ScorerConfigError(f"created_after must be a day, 'YYYY-MM-DD' or a date, got {after!r}")
            if isinstance(filters.get("created_after"), str):
                try:
                    filters["created_after"] = date.fromisoformat(filters["created_after"])
                except ValueError:
                    raise ScorerConfigError(
                        f"created_after={filters['created_after']!r} is not a date; pass one as 'YYYY-MM-DD'"
                    ) from None
            preprocess["candidate_filter"] = CandidateFilter(**filters)
        postprocess: dict[str, Any] = {}
        if top_k is not None:
            if not _is_int(top_k) or top_k < 0:
                raise ScorerConfigError(f"top_k must be a whole number >= 0, got {top_k!r}; 0 or None lists every one")
            postprocess["top_k"] = top_k
        if rerank is not None:
            if not _is_int(rerank) or rerank < 1:
                raise ScorerConfigError(f"rerank must be a whole number >= 1 (models to re-rank), got {rerank!r}")
            postprocess["rerank"] = rerank
        if rerank_budget is not None:
            if not _is_number(rerank_budget) or not 0 <= rerank_budget < math.inf:
                raise ScorerConfigError(
                    f"rerank_budget must be a number of seconds >= 0, got {rerank_budget!r}; 0 keeps stage one alone"
                )
            postprocess["rerank_budget"] = rerank_budget
        if pareto is not None:
            if not isinstance(pareto, bool):
                raise ScorerConfigError(f"pareto must be True or False, got {pareto!r}")
            postprocess["pareto"] = pareto
        return preprocess, {}, postprocess

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Rank ``inputs`` (see the class docstring). A ``datasets`` object is one task: transformers would read a
        streamed one as a stream of tasks, row by row."""
        if _is_datasets_object(inputs):
            inputs = {"dataset": inputs}
        elif isinstance(inputs, list | tuple) and not inputs:
            raise InvalidDatasetError("an empty list of tasks; pass one task, or a list of them")
        return super().__call__(inputs, *args, **kwargs)

    @property
    def ranker(self) -> Ranker:
        """The ranker the pipeline scores with (unwrapped from the module transformers needs)."""
        model = self.model
        return model.ranker if isinstance(model, _RankerModule) else model  # type: ignore[return-value]

    def preprocess(  # type: ignore[override]
        self,
        inputs: Any,
        split: str | None = None,
        config: str | None = None,
        label_column: str | None = None,
        input_column: str | None = None,
        candidates: Any = None,
        models: Sequence[str] | None = None,
        candidate_filter: CandidateFilter | None = None,
        description: str | None = None,
    ) -> _Prepared:
        source, options = _task_source(inputs, split=split, config=config)
        if isinstance(inputs, Mapping) and not _is_dataset_dict(inputs) and "description" in inputs:
            description = description or inputs["description"]
        if description is not None and (not isinstance(description, str) or not description.strip()):
            raise InvalidDatasetError(
                f"the task's description is {description!r}; describe the task in words, or leave it out"
            )
        if isinstance(source, TaskDescription | TaskTokens):
            _note_unread_options(split=split, config=config, label_column=label_column, input_column=input_column)
        reading = task_reading(self.ranker)
        task = read_task(
            source, label_column=label_column, input_column=input_column, task_text=description, **options, **reading
        )
        tokens = task.tokens
        candidate_filter = candidate_filter if candidate_filter is not None else CandidateFilter()
        resolved = load_candidates(candidates, modality=tokens.description.modality)
        pool = select_candidates(
            resolved,
            modality=tokens.description.modality,
            model_ids=models,
            candidate_filter=candidate_filter,
        )
        logger.info("ranking %d candidates for '%s'", len(pool), tokens.description.name)
        return _Prepared(
            tokens=tokens,
            candidates=pool,
            candidate_filter=candidate_filter,
            source=task.source if task.source is not None else source,
            local_dir=_folder(candidates),
            pool_size=len(resolved),
        )

    def _forward(self, model_inputs: _Prepared) -> dict[str, Any]:  # type: ignore[override]
        ranker = self.ranker
        shortlist = rank(
            model_inputs.tokens,
            model_inputs.candidates,
            ranker=ranker,
            candidate_filter=model_inputs.candidate_filter,
            local_dir=model_inputs.local_dir,
        )
        shortlist = replace(shortlist, metadata={**shortlist.metadata, "pool_size": model_inputs.pool_size})
        return {"shortlist": shortlist, "prepared": model_inputs}

    def postprocess(  # type: ignore[override]
        self,
        model_outputs: dict[str, Any],
        top_k: int | None = DEFAULT_TOP_K,
        rerank: int | None = None,
        rerank_budget: float = DEFAULT_BUDGET_SECONDS,
        pareto: bool = False,
    ) -> Shortlist:
        shortlist: Shortlist = model_outputs["shortlist"]
        prepared: _Prepared = model_outputs["prepared"]
        if not rerank and rerank_budget and not isinstance(prepared.source, TaskDescription | TaskTokens):
            shortlist = _rerank_within_budget(shortlist, prepared, budget_seconds=float(rerank_budget))
        if rerank:
            if _has_no_samples(prepared.source):
                raise InvalidDatasetError(
                    "rerank= needs samples to run the candidates on, but this task has label names only; "
                    "pass a dataset or drop rerank="
                )
            shortlist = _rerank(shortlist, prepared, k=int(rerank))
        if pareto:
            shortlist = pareto_front(shortlist)
        if top_k:  # candidates that failed re-ranking stay listed after the top k, with their reason
            ok = [e for e in shortlist.entries if e.error is None]
            shortlist = shortlist.with_entries([*ok[:top_k], *(e for e in shortlist.entries if e.error is not None)])
        return shortlist

    def evaluate(self, records: Any, **options: Any) -> pd.DataFrame:
        """How well each ranker would have chosen on fine-tuning records: the table ``hf-spider evaluate`` prints.

        Args:
            records: a CSV (``model,target,accuracy[,modality][,labels]``), a TransferGraph records folder, a
                DataFrame with those columns, ``FinetuneRecords``, or ``"example"`` / ``"bundled"``.
            options: those of :func:`hf_spider.evaluation.evaluate.evaluate_records` (``rankers``, ``protocols``,
                ``candidates``, ``label_names``, ``targets``, ``keep_best_run``, ``allow_unknown_models``,
                ``folds``, ``seed``). ``candidates`` defaults to this pipeline's candidate index or folder.

        Returns:
            One row per (modality, protocol, ranker, target), plus ``weighted mean`` and ``plain mean`` rows; the
            notes and the one-line recommendations are in ``.attrs["notes"]`` and ``.attrs["recommendations"]``.

        Raises:
            InvalidRecordsError: bad records, with the fix in the message.
        """
        from .evaluation.evaluate import evaluate_records

        candidates = self._preprocess_params.get("candidates")
        if isinstance(candidates, str | os.PathLike):
            options.setdefault("candidates", candidates)
        evaluation = evaluate_records(records, **options)
        table = evaluation.table.copy()
        table.attrs.update(notes=list(evaluation.notes), recommendations=evaluation.recommendations())
        return table


def _rerank(shortlist: Shortlist, prepared: _Prepared, *, k: int) -> Shortlist:
    """Stage two: forward passes of the top ``k`` on the samples (:func:`hf_spider.rerank.rerank_shortlist`)."""
    from .rerank import rerank_shortlist
    from .rerank.options import ForwardOptions

    options = ForwardOptions(local_dir=prepared.local_dir)  # a candidate folder's weights, as the budget path reads
    return rerank_shortlist(shortlist, prepared.source, prepared.candidates, k=k, options=options)


def _rerank_within_budget(shortlist: Shortlist, prepared: _Prepared, *, budget_seconds: float) -> Shortlist:
    """Stage two as ``hf-spider rank --dataset`` runs it (:func:`hf_spider.rerank.budget.rerank_within_budget`)."""
    from .rerank.budget import rerank_within_budget
    from .rerank.options import ForwardOptions

    options = ForwardOptions(local_dir=prepared.local_dir)
    return rerank_within_budget(
        shortlist, prepared.source, prepared.candidates, budget_seconds=budget_seconds, options=options
    )


def _folder(candidates: Any) -> str | None:
    """The folder of a pool given as a folder of repos (stage two reads their weights there), else ``None``."""
    return str(candidates) if isinstance(candidates, str | os.PathLike) and os.path.isdir(candidates) else None


def _has_no_samples(source: Any) -> bool:
    return isinstance(source, TaskDescription) or (isinstance(source, TaskTokens) and source.prototypes is None)


def _note_unread_options(**options: str | None) -> None:
    """Say which data options a task without data leaves unread: they may be set on the pipeline for the calls that
    carry a dataset, so a warning, not a refusal."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        logger.warning(
            "%s not used: the task is known by its label names or description, and has no data to read",
            ", ".join(f"{name}=" for name in given),
        )


def _task_source(inputs: Any, *, split: str | None, config: str | None) -> tuple[Any, dict[str, Any]]:
    """The task's source for :func:`~hf_spider.ranking.read_task` and its loading options; label names become a
    description."""
    options: dict[str, Any] = {"split": split, "config": config}
    if isinstance(inputs, TaskDescription | TaskTokens):
        return inputs, {}
    if not isinstance(inputs, Mapping) or _is_dataset_dict(inputs):
        return inputs, options
    unknown = set(map(str, inputs)) - TASK_KEYS
    if unknown and {"dataset", "labels", "description"} & set(inputs):  # else: the message below names all three
        raise InvalidDatasetError(
            f"unknown task key(s) {', '.join(sorted(unknown))}; a task dict takes {', '.join(sorted(TASK_KEYS))}"
        )
    if "labels" in inputs and "dataset" in inputs:
        raise InvalidDatasetError(
            "a task dict takes 'dataset' or 'labels', not both: a dataset's classes are read from it"
        )
    misplaced = sorted({"split", "config"} & set(inputs))
    if misplaced and "dataset" not in inputs and {"labels", "description"} & set(inputs):
        raise InvalidDatasetError(
            f"{' and '.join(map(repr, misplaced))} {'choose' if len(misplaced) > 1 else 'chooses'} part of a dataset, "
            "and this task has none; drop them, or pass {'dataset': ..., 'split': ...}"
        )
    if "labels" in inputs:
        given = inputs["labels"]
        if (
            isinstance(given, str | bytes)
            or not isinstance(given, Sequence)
            or not all(isinstance(n, str) for n in given)
        ):
            raise InvalidDatasetError(
                f"'labels' must be a list of class names (strings), got {type(given).__name__}; pass ['cat', 'dog']"
            )
        labels = list(given)
        modality = inputs.get("modality")
        if modality not in MODALITIES:
            raise InvalidDatasetError(
                f"a task given by label names needs 'modality' ('image' or 'text'), got {modality!r}; "
                "add it to the dict"
            )
        if len(set(labels)) < 2:
            raise InvalidDatasetError(f"label names give {len(set(labels))} distinct class(es); pass at least 2")
        name = str(inputs.get("name", "labels"))
        return TaskDescription(name=name, modality=modality, label_names=tuple(labels)), {}
    if "dataset" in inputs:
        options.update({k: inputs[k] for k in ("split", "config") if k in inputs})
        return inputs["dataset"], options
    if "description" in inputs:
        modality = inputs.get("modality")
        if modality not in MODALITIES:
            raise InvalidDatasetError(
                f"a task given by its description needs 'modality' ('image' or 'text'), got {modality!r}; add it"
            )
        return TaskDescription(name=str(inputs.get("name", "task")), modality=modality, label_names=()), {}
    raise InvalidDatasetError(
        f"a task dict needs 'dataset', 'labels' or 'description' (got keys {', '.join(map(str, inputs))}); "
        "pass {'dataset': ..., 'split': ...}, {'labels': [...], 'modality': ...} or "
        "{'description': ..., 'modality': ...}"
    )


#: The keys a task dict may hold.
TASK_KEYS = frozenset({"dataset", "split", "config", "labels", "modality", "name", "description"})


def _is_dataset_dict(value: Any) -> bool:
    return type(value).__name__ in ("DatasetDict", "IterableDatasetDict")


def _is_datasets_object(value: Any) -> bool:
    return type(value).__module__.startswith("datasets.") and type(value).__name__ in (
        "Dataset",
        "DatasetDict",
        "IterableDataset",
        "IterableDatasetDict",
    )


def _are_strings(values: Any) -> bool:
    return isinstance(values, Sequence | set | frozenset) and all(isinstance(v, str) for v in values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


class ScorerConfig(PretrainedConfig):
    """What ``transformers.AutoConfig`` reads from a scorer's ``config.json`` (the scorer itself loads the rest)."""

    model_type = "hf_spider_scorer"  # hf_spider.scorer.checks.SCORER_MODEL_TYPE, without importing the scorer


class _LoadScorer:
    """``pt_model`` of the registered task: loads a ``TransferScorer`` for ``transformers.pipeline(model=<path>)``.

    transformers passes its own keyword arguments (``config``, ``_from_pipeline``, ``trust_remote_code``, ...) to
    ``from_pretrained``; the scorer's mixin would hand them to ``__init__``, so only the Hub ones go through.
    """

    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike[str], **kwargs: Any) -> Ranker:
        return load_scorer(pretrained, revision=kwargs.get("revision"), token=kwargs.get("token"))


def load_scorer(
    pretrained: str | os.PathLike[str], *, revision: str | None = None, token: str | bool | None = None
) -> Ranker:
    """A trained Model Spider scorer from a Hub repo id or a local folder (safetensors only, no remote code), with the
    task-aware model saved beside it, if any (:class:`~hf_spider.scorer.ranker.SpiderRanker`: as ``--scorer`` loads
    it)."""
    from .scorer.ranker import SpiderRanker  # type: ignore[import-not-found,unused-ignore]

    ranker: Ranker = SpiderRanker.from_pretrained(str(pretrained), revision=revision, token=token)
    return ranker


def register() -> None:
    """Register ``"model-selection"`` with transformers so ``transformers.pipeline("model-selection", ...)`` works.

    Also registers the scorer's ``model_type`` with ``AutoConfig``, so ``model=`` may be a scorer folder or Hub repo
    as well as a loaded ranker. Idempotent; :func:`pipeline` calls it. The default scorer ships inside the package
    rather than in a pinned Hub repo, so ``transformers.pipeline`` needs ``model=`` (``hf_spider.pipeline`` falls back
    to :func:`hf_spider.ranking.default_ranker`).
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    AutoConfig.register(ScorerConfig.model_type, ScorerConfig, exist_ok=True)
    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is ModelSelectionPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=ModelSelectionPipeline, pt_model=_LoadScorer, type="multimodal"
    )


def pipeline(
    task: str = TASK,
    model: Any = None,
    *,
    ranker: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    **kwargs: Any,
) -> ModelSelectionPipeline:
    """Build the model-selection pipeline; the Hub-native twin of ``transformers.pipeline("model-selection", ...)``.

    Args:
        task: must be ``"model-selection"``.
        model: a ``TransferScorer`` or any :class:`Ranker`, a scorer repo id or folder, or ``None`` for
            :func:`hf_spider.ranking.default_ranker`.
        ranker: a ranker by name instead of ``model`` (``"spider"``, ``"graph"``, ``"fennec"``, ``"collab_prior"``,
            ``"size_prior"``; see :func:`hf_spider.rankers.get_ranker`).
        revision / token: for loading a scorer from the Hub.
        kwargs: default options of every call (see :class:`ModelSelectionPipeline`).

    Raises:
        ScorerConfigError: another task, an unknown option, or a model that is not a scorer or ranker.
    """
    if task != TASK:
        raise ScorerConfigError(f"hf_spider.pipeline serves the '{TASK}' task, not '{task}'; use transformers.pipeline")
    register()
    if ranker is not None:
        if model is not None:
            raise ScorerConfigError("pass either model= or ranker=, not both")
        from .rankers import get_ranker

        model = get_ranker(ranker)
    elif model is None:
        from .ranking import default_ranker

        model = default_ranker()
    elif isinstance(model, (str, os.PathLike)):
        model = load_scorer(model, revision=revision, token=token)
    kwargs.setdefault("device", -1)  # the model's own device: rankers are CPU code, a scorer stays where it is
    return ModelSelectionPipeline(model=model, task=TASK, **kwargs)


class _CallableModule(types.ModuleType):
    """Lets ``hf_spider.pipeline("model-selection")`` work although ``hf_spider.pipeline`` is also this module.

    Once the submodule is imported, Python binds the package attribute ``pipeline`` to the module, so a function of
    the same name in ``hf_spider/__init__.py`` would be shadowed. Making the module callable keeps both spellings.
    """

    def __call__(self, task: str = TASK, model: Any = None, **kwargs: Any) -> ModelSelectionPipeline:
        return pipeline(task, model, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
