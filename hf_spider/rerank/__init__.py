"""Stage two of Model Spider: re-rank the best stage-one candidates with real forward passes on the task's samples.

``rerank_shortlist`` is the entry point; ``rerank_within_budget`` is what ``hf-spider rank --dataset`` and the
pipeline call (successive halving within a time budget). ``python -m hf_spider.rerank`` (or ``accelerate launch -m
hf_spider.rerank``) runs it from the command line, like ``hf-spider rerank``. ``fuse`` is the fusion it ends with,
public so that recorded estimator values can be re-mixed without running a model (``fusion_inputs`` reads them back
from a shortlist). ``FeatureCache`` holds the candidates' features per revision and sample set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .budget import rerank_within_budget
    from .cache import FeatureCache
    from .combine import fusion_inputs, rerank_shortlist
    from .distributed import RerankResult, rerank_candidates
    from .forward import extract_features
    from .fusion import FusionParameters, FusionResult, fuse
    from .options import ForwardOptions
    from .samples import TaskSamples, load_samples

_EXPORTS = {
    "rerank_within_budget": "budget",
    "FeatureCache": "cache",
    "rerank_shortlist": "combine",
    "fusion_inputs": "combine",
    "RerankResult": "distributed",
    "rerank_candidates": "distributed",
    "ForwardOptions": "options",
    "extract_features": "forward",
    "fuse": "fusion",
    "FusionParameters": "fusion",
    "FusionResult": "fusion",
    "TaskSamples": "samples",
    "load_samples": "samples",
}
__all__ = [
    "FeatureCache",
    "ForwardOptions",
    "FusionParameters",
    "FusionResult",
    "RerankResult",
    "TaskSamples",
    "extract_features",
    "fuse",
    "fusion_inputs",
    "load_samples",
    "rerank_candidates",
    "rerank_shortlist",
    "rerank_within_budget",
]

# Import lazily: ``import hf_spider.rerank`` must not import torch or transformers.
__getattr__ = lazy_exports(__name__, _EXPORTS)
