"""Run the candidates over every process with Accelerate: one code path for 1 process, N GPUs, N CPU processes.

Candidates, not samples, are split: each process loads one candidate at a time, runs it on all samples, scores the
features and frees it. Candidates are dealt out by parameter count before ``split_between_processes`` cuts the list
into contiguous slices, so slices cost about the same. Each process returns a ``list[RerankResult]`` and
``gather_object`` joins them in rank order (with one process it returns the list as is), so 1 and N processes give
the same type and, since every process draws the same samples, the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CandidateLoadError, EstimatorInputError
from ..hub.records import ModelRecord
from .forward import (
    CandidateFeatures,
    ForwardOptions,
    LoadedCandidate,
    PreparedInputs,
    load_candidate,
    release,
    run_candidate,
    transformers_lib,
)
from .samples import TaskSamples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankResult:
    """What re-ranking learnt about one candidate; plain numbers only, so it gathers cheaply across processes.

    Args:
        model_id: the candidate's repo id (the key results are deduplicated by).
        sha: the revision that was run.
        estimator_scores: estimator name -> value on the samples (empty when the candidate failed).
        num_samples: samples it was run on.
        forward_seconds: time inside the model's forward calls.
        load_seconds: time fetching and loading the model.
        total_seconds: time from fetching the candidate to its last estimator score.
        error: why it could not be scored (load error, unsafe repo, out of memory), ``None`` on success.
    """

    model_id: str
    sha: str | None
    estimator_scores: dict[str, float] = field(default_factory=dict)
    num_samples: int = 0
    forward_seconds: float = 0.0
    load_seconds: float = 0.0
    total_seconds: float = 0.0
    error: str | None = None


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


def rerank_candidates(
    candidates: Sequence[ModelRecord],
    samples: TaskSamples,
    *,
    estimators: Sequence[str] = ("logme",),
    options: ForwardOptions | None = None,
) -> list[RerankResult]:
    """Run and score every candidate on ``samples``, spread over the processes; every process gets all results.

    Each process loads its next candidate in a background thread while the current one runs (unless
    ``options.prefetch`` is off), preprocesses the samples once per distinct processor configuration, and frees
    each model after scoring it. A candidate that fails (unsafe, unloadable, out of memory) becomes a result with
    ``error`` set; the others go on. Warnings raised by the libraries underneath are logged (``hf_spider.rerank``,
    level INFO), not printed.

    Returns:
        One result per distinct candidate, in the order of ``candidates``.
    """
    from accelerate.utils import gather_object

    state = partial_state()
    options = options or ForwardOptions()
    unique = list({c.repo_id: c for c in candidates}.values())
    with state.split_between_processes(deal_by_size(unique, state.num_processes)) as share:
        mine = _score_share(list(share), samples, estimators, options, state.device)
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
) -> list[RerankResult]:
    """This process's candidates, one at a time, the next one loading in the background."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from huggingface_hub.utils import tqdm

    modality = samples.description.modality
    prepared = PreparedInputs(samples.inputs, modality, options)
    prefetch = options.prefetch and options.device_map is None
    out: list[RerankResult] = []
    with _quiet_libraries(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf_spider.prefetch") as loader:

        def load(record: ModelRecord) -> Future[LoadedCandidate]:
            # loaded on the CPU off the main thread; moved to the device on it once the previous model is freed
            return loader.submit(load_candidate, record, modality=modality, options=options)

        pending = load(share[0]) if share else None
        for i, record in enumerate(tqdm(share, desc="re-ranking", unit="model", name="hf_spider.rerank", disable=None)):
            start = time.perf_counter()
            current = pending if pending is not None else load(record)
            pending = load(share[i + 1]) if prefetch and i + 1 < len(share) else None
            try:
                candidate = current.result()
                waited = time.perf_counter() - start
                out.append(_score_one(record, candidate, prepared, samples, estimators, device, start))
                logger.debug(
                    "%s: waited %.2fs for its load (%.2fs), forward %.2fs, total %.2fs",
                    record.repo_id,
                    waited,
                    candidate.load_seconds,
                    out[-1].forward_seconds,
                    out[-1].total_seconds,
                )
            except (CandidateLoadError, EstimatorInputError) as exc:
                reason = getattr(exc, "reason", str(exc))
                logger.info("not re-ranked: %s: %s", record.repo_id, reason)
                out.append(
                    RerankResult(record.repo_id, record.sha, error=reason, total_seconds=time.perf_counter() - start)
                )
    return out


def _score_one(
    record: ModelRecord,
    candidate: LoadedCandidate,
    prepared: PreparedInputs,
    samples: TaskSamples,
    estimators: Sequence[str],
    device: Any,
    start: float,
) -> RerankResult:
    try:
        if getattr(candidate.model, "hf_device_map", None) is None:  # device_map placed it already
            candidate.model = candidate.model.to(device)
        features = run_candidate(candidate, prepared)
    finally:
        release(candidate)
    with _one_thread():
        scores = {name: estimate(name, features, samples.labels) for name in estimators}
    return RerankResult(
        model_id=record.repo_id,
        sha=record.sha,
        estimator_scores=scores,
        num_samples=len(samples.labels),
        forward_seconds=features.forward_seconds,
        load_seconds=features.load_seconds,
        total_seconds=time.perf_counter() - start,
    )


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
