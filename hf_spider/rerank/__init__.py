"""Stage two of Model Spider: re-rank the best stage-one candidates with real forward passes on the task's samples.

``rerank_shortlist`` is the entry point; ``python -m hf_spider.rerank`` (or ``accelerate launch -m hf_spider.rerank``)
runs it from the command line, like ``hf-spider rerank``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .combine import rerank_shortlist
    from .distributed import RerankResult, rerank_candidates
    from .forward import ForwardOptions, extract_features
    from .samples import TaskSamples, load_samples

_EXPORTS = {
    "rerank_shortlist": "combine",
    "RerankResult": "distributed",
    "rerank_candidates": "distributed",
    "ForwardOptions": "forward",
    "extract_features": "forward",
    "TaskSamples": "samples",
    "load_samples": "samples",
}
__all__ = [
    "ForwardOptions",
    "RerankResult",
    "TaskSamples",
    "extract_features",
    "load_samples",
    "rerank_candidates",
    "rerank_shortlist",
]


def __getattr__(name: str) -> Any:
    """Import lazily: ``import hf_spider.rerank`` must not import torch or transformers."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
