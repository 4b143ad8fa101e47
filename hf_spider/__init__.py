"""hf-spider: which pre-trained model on the Hugging Face Hub should I fine-tune for my dataset?"""

from __future__ import annotations

from ._version import __version__ as __version__


def register() -> None:
    """Register the ``"model-selection"`` task with ``transformers.pipeline`` (imports transformers only now)."""
    from .pipeline import register as register_pipeline

    register_pipeline()


def __getattr__(name: str) -> object:
    # ``hf_spider.pipeline`` is imported on first use: it pulls in torch and transformers. The module is callable,
    # so ``hf_spider.pipeline("model-selection")`` works (see hf_spider/pipeline.py).
    if name == "pipeline":
        import importlib

        return importlib.import_module(".pipeline", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
