"""Run the candidates over every process with Accelerate: one code path for 1 process, N GPUs, N CPU processes.

Candidates, not samples, are split: each process loads one candidate at a time, runs it on all samples, scores the
features and frees it. Candidates are dealt out by parameter count before ``split_between_processes`` cuts the list
into contiguous slices, so slices cost about the same. Each process returns a ``list[RerankResult]`` and
``gather_object`` joins them in rank order (with one process it returns the list as is), so 1 and N processes give
the same type and, since every process draws the same samples, the same numbers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import CandidateLoadError, EstimatorInputError
from ..hub.records import ModelRecord
from .forward import CandidateFeatures, feature_problem, run_candidate
from .loading import LoadedCandidate, load_candidate, release, transformers_lib
from .options import ForwardOptions
from .preprocess import PreparedInputs
from .samples import TaskSamples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankResult:
    """What re-ranking learnt about one candidate; plain numbers only, so it gathers cheaply across processes.

    Args:
        model_id: the candidate's repo id (the key results are deduplicated by).
        sha: the revision that was run.
        estimator_scores: estimator name -> value on the samples (empty when the candidate failed; an estimator
            that cannot score this candidate, such as NCE on a model without a classification head, is left out).
        num_samples: samples it was run on.
        forward_seconds: time inside the model's forward calls (0 when its features came from the cache).
        load_seconds: time fetching and loading the model.
        total_seconds: time from fetching the candidate to its last estimator score.
        error: why it could not be scored (load error, unsafe repo, out of memory, estimator), ``None`` on success.
        cached: its features were read from the feature cache (no forward pass ran).
        skipped: it was not run because the time budget was spent (not a failure: it keeps its earlier place).
    """

    model_id: str
    sha: str | None
    estimator_scores: dict[str, float] = field(default_factory=dict)
    num_samples: int = 0
    forward_seconds: float = 0.0
    load_seconds: float = 0.0
    total_seconds: float = 0.0
    error: str | None = None
    cached: bool = False
    skipped: bool = False


def partial_state() -> Any:
    """The shared ``PartialState``; CPU processes form a gloo group when no accelerator is present.

    ``PartialState`` only joins CPU processes into one group when asked for the CPU, so ``accelerate launch
    --multi_gpu --num_processes N`` on a machine without GPUs (or ``ACCELERATE_USE_CPU=1``) gives N cooperating CPU
    processes instead of N independent ones.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not _has_accelerator(torch))


def deal_by_size(candidates: Sequence[ModelRecord], num_processes: int) -> list[ModelRecord]:
    """Reorder ``candidates`` so the contiguous slices of ``split_between_processes`` hold similar parameter counts.

    Largest first, dealt round-robin (unknown sizes count as the largest known): slice ``i`` gets the ``i``-th,
    ``i + num_processes``-th, ... candidate, and round-robin gives exactly the slice lengths Accelerate cuts.
    """
    largest = max((c.num_parameters or 0 for c in candidates), default=0)
    ordered = sorted(candidates, key=lambda c: (-(c.num_parameters or largest), c.repo_id))
    return [c for rank in range(num_processes) for c in ordered[rank::num_processes]]


@dataclass(frozen=True)
class Deadline:
    """A time budget shared by the processes: no candidate starts when it is expected to end past ``at``.

    Args:
        at: the wall-clock time (``time.time()``, comparable between the processes of one machine) to end by.
        expected_seconds: the cost of one candidate expected before any has run in this call (the caller's
            measurement from an earlier round, scaled to this round's samples; 0: unknown, the first one runs).
    """

    at: float
    expected_seconds: float = 0.0

    def allows(self, done: Sequence[RerankResult]) -> bool:
        """Whether one more candidate is expected to end in time, from the mean cost of those run so far."""
        costs = [r.total_seconds for r in done if not r.cached and not r.skipped and r.error is None]
        expected = float(np.mean(costs)) if costs else self.expected_seconds
        return time.time() + expected <= self.at


def rerank_candidates(
    candidates: Sequence[ModelRecord],
    samples: TaskSamples,
    *,
    estimators: Sequence[str] = ("logme",),
    options: ForwardOptions | None = None,
    deadline: Deadline | None = None,
) -> list[RerankResult]:
    """Run and score every candidate on ``samples``, spread over the processes; every process gets all results.

    Features already in the feature cache (:mod:`.cache`, unless ``options.feature_cache`` is off) are read, not
    computed: no model is loaded for them. Each process loads its next uncached candidate in a background thread
    while the current one runs (unless ``options.prefetch`` is off), preprocesses the samples once per distinct
    processor configuration, and frees each model after scoring it. Any error of one candidate (loading it, moving
    it to the device, running out of memory there, which on CUDA is retried once at half the batch, features that
    are non-finite or the same for every sample, or an estimator) becomes a result with ``error`` set; the others go
    on. With a ``deadline``, a candidate not expected to end in time is not started (``skipped``). Warnings raised by
    the libraries underneath are logged (``hf_spider.rerank``, level INFO), not printed.

    Returns:
        One result per distinct candidate, in the order of ``candidates``.
    """
    from accelerate.utils import gather_object

    state = partial_state()
    options = options or ForwardOptions()
    unique = list({c.repo_id: c for c in candidates}.values())
    with state.split_between_processes(deal_by_size(unique, state.num_processes)) as share:
        mine = _score_share(list(share), samples, estimators, options, state.device, deadline)
    gathered: list[RerankResult] = gather_object(mine)
    by_id: dict[str, RerankResult] = {}
    for result in gathered:  # keyed by model id, so padding (if a caller pads) counts once
        by_id.setdefault(result.model_id, result)
    return [by_id[c.repo_id] for c in unique]


def _score_share(
    share: Sequence[ModelRecord],
    samples: TaskSamples,
    estimators: Sequence[str],
    options: ForwardOptions,
    device: Any,
    deadline: Deadline | None,
) -> list[RerankResult]:
    """This process's candidates: cached ones first (no model loads), then the others one at a time, the next one
    loading in the background."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from huggingface_hub.utils import tqdm

    from .cache import FeatureCache

    cache = FeatureCache.default() if options.feature_cache else None
    keys: dict[str, str] = {}
    done: dict[str, RerankResult] = {}
    todo: list[ModelRecord] = []
    for record in share:
        start = time.perf_counter()
        key = cache.key(record, samples, options) if cache is not None else None
        hit = cache.load(key) if cache is not None and key is not None else None
        if key is not None:
            keys[record.repo_id] = key
        if hit is None:
            todo.append(record)
            continue
        done[record.repo_id] = _guarded(
            record, start, functools.partial(_scores, record, hit, samples, estimators, start, cached=True)
        )
    modality = samples.description.modality
    prepared = PreparedInputs(samples.inputs, modality, options)
    prefetch = options.prefetch and options.device_map is None
    with _quiet_libraries(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf_spider.prefetch") as loader:

        def load(record: ModelRecord) -> Future[LoadedCandidate]:
            # loaded on the CPU off the main thread; moved to the device on it once the previous model is freed
            return loader.submit(load_candidate, record, modality=modality, options=options)

        pending = load(todo[0]) if todo and (deadline is None or deadline.allows([])) else None
        for i, record in enumerate(tqdm(todo, desc="re-ranking", unit="model", name="hf_spider.rerank", disable=None)):
            start = time.perf_counter()
            if deadline is not None and not deadline.allows(list(done.values())):
                done[record.repo_id] = RerankResult(record.repo_id, record.sha, skipped=True)
                pending = None
                continue
            current = pending if pending is not None else load(record)
            pending = load(todo[i + 1]) if prefetch and i + 1 < len(todo) else None

            def run(
                record: ModelRecord = record, current: Future[LoadedCandidate] = current, start: float = start
            ) -> RerankResult:
                features = _forward(current.result(), prepared, samples, options, device)
                if cache is not None and record.repo_id in keys:
                    cache.save(keys[record.repo_id], features, _sidecar(record, samples))
                return _scores(record, features, samples, estimators, start)

            done[record.repo_id] = _guarded(record, start, run)
            logger.debug("%s: total %.2fs", record.repo_id, done[record.repo_id].total_seconds)
    return [done[r.repo_id] for r in share]


def _guarded(record: ModelRecord, start: float, score: Callable[[], RerankResult]) -> RerankResult:
    """``score()``, or a failed result with its reason when anything about this one candidate goes wrong.

    Every exception is one candidate's problem (a broken repo, an out-of-memory error while moving it to the device,
    a library error on its weights, a degenerate estimator input); the run goes on with the others.
    """
    try:
        return score()
    except Exception as exc:  # any error of one candidate must not abort the others
        reason = getattr(exc, "reason", None) or _reason(exc)
        logger.info("not re-ranked: %s: %s", record.repo_id, reason)
        return RerankResult(record.repo_id, record.sha, error=reason, total_seconds=time.perf_counter() - start)


def _reason(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return "out of memory on the device; lower --batch-size or use --device-map auto"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _forward(
    candidate: LoadedCandidate, prepared: PreparedInputs, samples: TaskSamples, options: ForwardOptions, device: Any
) -> CandidateFeatures:
    """Move the candidate to the device and run it; on CUDA, an out-of-memory error is retried once at half the
    batch. The model is freed whatever happens."""
    import torch

    try:
        if getattr(candidate.model, "hf_device_map", None) is None:  # device_map placed it already
            candidate.model = candidate.model.to(device)
        try:
            return run_candidate(candidate, prepared)
        except torch.OutOfMemoryError:
            if candidate.model.device.type != "cuda" or options.batch_size < 2:
                raise
            torch.cuda.empty_cache()
            half = replace(options, batch_size=options.batch_size // 2)
            logger.info("%s: out of memory; retrying once at batch size %d", candidate.model_id, half.batch_size)
            return run_candidate(candidate, PreparedInputs(samples.inputs, samples.description.modality, half))
    finally:
        release(candidate)


def _scores(
    record: ModelRecord,
    features: CandidateFeatures,
    samples: TaskSamples,
    estimators: Sequence[str],
    start: float,
    *,
    cached: bool = False,
) -> RerankResult:
    """Every estimator that can score these features; a candidate fails only when none can (the first reason), or
    when its features carry nothing to score (:func:`~.forward.feature_problem`: checked here, so features read from
    the cache are held to it too)."""
    problem = feature_problem(features)
    if problem is not None:
        raise CandidateLoadError(record.repo_id, problem)
    scores: dict[str, float] = {}
    reasons: list[str] = []
    with _one_thread():
        for name in estimators:
            try:
                scores[name] = estimate(name, features, samples.labels)
            except EstimatorInputError as exc:
                reasons.append(exc.args[0] if exc.args else str(exc))
    if not scores:
        raise EstimatorInputError(reasons[0])
    return RerankResult(
        model_id=record.repo_id,
        sha=record.sha,
        estimator_scores=scores,
        num_samples=len(samples.labels),
        forward_seconds=features.forward_seconds,
        load_seconds=features.load_seconds,
        total_seconds=time.perf_counter() - start,
        cached=cached,
    )


def _sidecar(record: ModelRecord, samples: TaskSamples) -> dict[str, Any]:
    """What a feature cache entry was computed from (read by people, never by the cache)."""
    return {
        "model": record.repo_id,
        "sha": record.sha,
        "task": samples.description.name,
        "sampling": samples.sampling,
        "num_samples": len(samples.labels),
    }


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Keep library chatter off the user's terminal while candidates load and run, without losing it.

    Python warnings (torchvision's image-extension notice when timm imports it, numerical RuntimeWarnings, ...) are
    recorded and logged at INFO; transformers' own logging is set to errors only and its weight-loading progress bars
    are turned off, then both are restored.
    """
    import warnings

    transformers = transformers_lib()
    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
    for seen in {(str(w.message), w.category.__name__) for w in caught}:
        logger.info("library warning while re-ranking (%s): %s", seen[1], seen[0])


#: The arrays re-ranking can give an estimator: the candidate's features, its source-class probabilities, the labels.
AVAILABLE_INPUTS = frozenset({"features", "labels", "source_probs"})


def estimator_spec(name: str) -> Any:
    """The registry entry of estimator ``name``, checked to need only what a forward pass on the task gives.

    Raises:
        EstimatorInputError: no estimator of that name, or one that needs the source task's own samples (OTCE).
    """
    from ..estimators import ESTIMATORS

    if name not in ESTIMATORS:
        raise EstimatorInputError(f"unknown estimator '{name}'; pass one of {', '.join(sorted(ESTIMATORS))}")
    spec = ESTIMATORS[name]
    missing = sorted(set(spec.inputs) - AVAILABLE_INPUTS)
    if missing:
        raise EstimatorInputError(
            f"estimator '{name}' needs {', '.join(missing)}, which re-ranking on the target task does not have; "
            "pick one such as 'logme'"
        )
    return spec


def estimate(name: str, features: CandidateFeatures, labels: np.ndarray) -> float:
    """Score one candidate's output with the registered estimator ``name`` (its raw value, whatever its direction).

    Raises:
        EstimatorInputError: unknown estimator, one that needs source-class probabilities from a model without a
            classification head, or a score that cannot be computed or is not finite.
    """
    spec = estimator_spec(name)
    if "source_probs" in spec.inputs and features.probabilities is None:
        raise EstimatorInputError(
            f"estimator '{name}' needs source-class probabilities and this model has no classification head; "
            "use a feature-based estimator such as 'logme'"
        )
    try:
        value = float(spec(features=features.features, labels=labels, source_probs=features.probabilities))
    except RuntimeError as exc:  # torch.linalg errors on degenerate features
        raise EstimatorInputError(f"estimator '{name}' failed on these features ({exc}); try another one") from exc
    if not np.isfinite(value):
        raise EstimatorInputError(f"estimator '{name}' gave {value} (degenerate or overflowing features); try another")
    return value


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run estimators on one CPU thread: multi-threaded LAPACK changes their last digits with the thread count, and
    a run with 1 process (all cores) must give the same numbers as N processes (fewer threads each)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _has_accelerator(torch: Any) -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6 knows every backend (CUDA, XPU, MPS, ...)
    if accelerator is not None:
        return bool(accelerator.is_available())
    return bool(torch.cuda.is_available())
