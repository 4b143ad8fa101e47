"""Run a loaded candidate on the task's samples and return what a linear probe would see.

Features are the input of the classification head when the model has one (with its softmax as source-class
probabilities for LEEP and NCE), else the layout's pooled output (the sentence embedding; the CLS token of a vision
transformer; the pooled output of a CNN; mean pooling for other text encoders).

The steps before the forward pass have modules of their own: :mod:`.fetch` (safety checks, download),
:mod:`.loading` (the model), :mod:`.sentence_modules` (the sentence-transformers stack) and :mod:`.preprocess` (the
samples' tensors). :func:`extract_features` chains them for one candidate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CandidateLoadError
from ..hub.records import ModelRecord
from .fetch import first_line
from .loading import HEAD_SUFFIXES, LoadedCandidate, classification_heads, load_candidate, release
from .options import ForwardOptions
from .preprocess import PreparedInputs
from .sentence_modules import sentence_embedding

#: Relative spread (over the samples, as a fraction of the features' largest magnitude) at or below which a
#: candidate's features are the same for every sample. Each float32 operation rounds to half an ulp (``eps / 2`` of
#: the value's magnitude), and errors summed over ``n`` rounded terms grow like ``sqrt(n)`` ulps (a random walk). Pooled
#: features sum at most a few thousand rounded terms (the tokens of a mean pooling, the hidden units a LayerNorm
#: averages): ``eps * sqrt(4096)``, 64 ulps, about 7.6e-6. A spread below it cannot be told from rounding: such a
#: model reads nothing of its input (a zeroed last LayerNorm gives its bias for every sample, spread ~1.5 ulps), and
#: estimators would rank that rounding noise. Models that read their input spread thousands of ulps or more.
CONSTANT_FEATURES_RTOL = float(np.finfo(np.float32).eps) * 64.0


@dataclass(frozen=True, eq=False)
class CandidateFeatures:
    """What one candidate produced on the samples.

    Args:
        features: ``[N, D]`` float32 pooled features, one row per sample.
        probabilities: ``[N, C_src]`` float64 softmax over the candidate's own classes, ``None`` without a head.
        forward_seconds: time spent inside the model's forward calls only.
        load_seconds: time spent fetching and loading the candidate.
    """

    features: np.ndarray
    probabilities: np.ndarray | None
    forward_seconds: float
    load_seconds: float


def feature_problem(features: CandidateFeatures) -> str | None:
    """Why ``features`` carry nothing to score, or ``None`` when they may be scored.

    The model is at fault in both cases, never the samples: features that are NaN or infinite for some sample (NaN
    weights, an overflow), or features that are the same for every sample up to :data:`CONSTANT_FEATURES_RTOL` of
    their scale (zeroed weights, a hidden size of 1 under a LayerNorm): any estimator value of those would rank noise.
    """
    x = np.asarray(features.features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        return f"its features have shape {x.shape}, not one row of at least one value per sample"
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        return (
            f"its features are NaN or infinite for {int(bad.sum())} of {len(x)} samples: the model's weights or its "
            "arithmetic are broken (NaN weights, an overflow), not the samples"
        )
    scale = float(np.abs(x).max())
    spread = float(np.ptp(x, axis=0).max()) / scale if scale > 0 else 0.0
    if len(x) > 1 and spread <= CONSTANT_FEATURES_RTOL:
        return (
            f"its features are the same for every sample (spread {spread:.2g} of their scale): the model reads "
            "nothing of the input"
        )
    return None


def run_candidate(candidate: LoadedCandidate, prepared: PreparedInputs) -> CandidateFeatures:
    """Run a loaded candidate on the prepared samples without gradients; features and source-class probabilities.

    Raises:
        CandidateLoadError: the processor rejects the samples or the forward pass fails.
        torch.OutOfMemoryError: the batch does not fit on the device.
    """
    import torch

    model = candidate.model
    device = model.device
    batches = prepared.batches(candidate)
    features, probabilities = [], []
    forward_seconds = 0.0
    with torch.inference_mode(), _autocast(device), _head_input(candidate) as captured:
        for cpu_batch in batches:
            batch = {k: v.to(device) for k, v in cpu_batch.items()}
            tick = time.perf_counter()
            try:
                output = model(**batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            except torch.OutOfMemoryError:
                raise  # the caller retries once at half the batch (CUDA) or reports the candidate failed
            except (RuntimeError, ValueError, TypeError) as exc:
                raise CandidateLoadError(candidate.model_id, f"its forward pass failed ({first_line(exc)})") from exc
            forward_seconds += time.perf_counter() - tick
            if candidate.sentence is not None:
                pooled = sentence_embedding(output.last_hidden_state, batch["attention_mask"], candidate.sentence)
            else:
                pooled = _flatten(captured[-1]) if captured else _pool(output, batch, candidate.modality)
            features.append(pooled.float().cpu().numpy())
            if captured:  # a classification head: its logits are the source-class scores LEEP and NCE need
                probabilities.append(torch.softmax(output.logits.double(), dim=-1).cpu().numpy())
            captured.clear()
    return CandidateFeatures(
        features=np.concatenate(features).astype(np.float32),
        probabilities=np.concatenate(probabilities) if probabilities else None,
        forward_seconds=forward_seconds,
        load_seconds=candidate.load_seconds,
    )


def extract_features(
    record: ModelRecord,
    inputs: Sequence[Any],
    *,
    modality: str,
    options: ForwardOptions | None = None,
    device: Any = None,
    prepared: PreparedInputs | None = None,
) -> CandidateFeatures:
    """Load ``record``'s model once, run it on ``inputs`` in batches without gradients, and free it.

    Args:
        record: the candidate (its ``repo_id`` and pinned ``sha``).
        inputs: ``[N]`` PIL images or strings, as the task's modality says.
        modality: ``"image"`` or ``"text"``.
        device: where to run (default: CPU); ignored when ``options.device_map`` is set.
        prepared: a :class:`PreparedInputs` of these ``inputs`` shared between calls, so candidates with the same
            processor are preprocessed once (default: a fresh one).

    Raises:
        CandidateLoadError: the candidate is unsafe, cannot be loaded or does not fit the modality.
        torch.OutOfMemoryError: it does not fit on the device.
    """
    options = options or ForwardOptions()
    prepared = prepared or PreparedInputs(inputs, modality, options)
    candidate = load_candidate(record, modality=modality, options=options, device=device or "cpu")
    try:
        return run_candidate(candidate, prepared)
    finally:
        release(candidate)


@contextlib.contextmanager
def _head_input(candidate: LoadedCandidate) -> Iterator[list[Any]]:
    """Capture the input of a classification head: the features its own linear layer was trained on."""
    captured: list[Any] = []
    model = candidate.model
    if not type(model).__name__.endswith(HEAD_SUFFIXES):
        yield captured
        return
    head = classification_heads(candidate.model_id, model, candidate.layout)[0]  # a distilled DeiT's: the class token's
    handle = head.register_forward_hook(lambda _module, args, _output: captured.append(args[0]))
    try:
        yield captured
    finally:
        handle.remove()


def _flatten(pooled: Any) -> Any:
    """``[B, D]`` from a head input: token sequences give their first (CLS) token, feature maps are flattened."""
    if pooled.ndim == 3:
        return pooled[:, 0]
    return pooled.flatten(1)


def _pool(output: Any, batch: dict[str, Any], modality: str) -> Any:
    hidden = getattr(output, "last_hidden_state", None)
    if hidden is None:
        return output.pooler_output
    if modality == "text":
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if hidden.ndim == 3:  # vision transformers: the CLS token their cards use as the image embedding
        return hidden[:, 0]
    pooler = getattr(output, "pooler_output", None)  # CNNs (timm's pre-logits included): global pooled output
    return pooler if pooler is not None else hidden.mean(dim=(2, 3))


def _autocast(device: Any) -> contextlib.AbstractContextManager[Any]:
    """bf16 (fp16 where bf16 is missing) autocast on CUDA; full precision on CPU, where it is the faster choice."""
    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)
