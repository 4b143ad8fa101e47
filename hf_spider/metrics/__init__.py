"""Hugging Face ``evaluate`` modules shipped with hf-spider.

``model_ranking`` (``metrics/model_ranking/model_ranking.py``) holds the ranking metrics of every hf-spider figure:
weighted tau, Kendall, Spearman, Pearson, top@k, rel@k and regret@k. ``evaluate.load(str(model_ranking_path()))``
loads it offline from the installed package, so a user scores their own selector with the same definitions.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluate import EvaluationModule

MODEL_RANKING = "model_ranking"


def model_ranking_path() -> Path:
    """The folder of the ``model_ranking`` module inside the installed package (what ``evaluate.load`` takes)."""
    return Path(str(resources.files("hf_spider") / "metrics" / MODEL_RANKING))


@functools.cache
def load_model_ranking() -> EvaluationModule:
    """The ``model_ranking`` module, loaded once per process (``evaluate`` imports datasets: a few seconds).

    ``keep_in_memory``: nothing is written to the metrics cache, so parallel runs never contend for its lock files.
    """
    import evaluate

    return evaluate.load(str(model_ranking_path()), keep_in_memory=True)
