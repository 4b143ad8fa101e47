"""Rankers by name: ``get_ranker("spider")`` (the default), the priors, and the graph / Fennec rankers.

Modules are imported on demand, so naming a ranker never imports torch for another one.
"""

from __future__ import annotations

import importlib

from ..errors import HfSpiderError
from .base import Ranker, TrainableRanker

#: Name -> ``(module, attribute, needs_records)``; ``needs_records`` rankers are built from the bundled records.
RANKERS: dict[str, tuple[str, str, bool]] = {
    "spider": ("hf_spider.scorer.ranker", "SpiderRanker.from_pretrained", False),
    "collab_prior": ("hf_spider.rankers.baselines", "CollaborativePrior", True),
    "size_prior": ("hf_spider.rankers.baselines", "SizePrior", False),
    "collab_prior_size_fallback": ("hf_spider.rankers.baselines", "CollabPriorSizeFallback", False),
    "graph": ("hf_spider.rankers.graph", "GraphRanker", False),
    "fennec": ("hf_spider.rankers.fennec", "FennecRanker", False),
}
DEFAULT_RANKER = "spider"
#: Trainable rankers that :func:`get_ranker` fits on the bundled records before returning them.
FIT_ON_BUNDLED_RECORDS = frozenset({"graph", "fennec", "collab_prior_size_fallback"})


class UnknownRankerError(HfSpiderError, KeyError):
    """A ranker name that is not in :data:`RANKERS`."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_ranker(name: str = DEFAULT_RANKER) -> Ranker:
    """A ready-to-use ranker by name (``spider`` loads the shipped scorer).

    The graph and Fennec rankers and the collaborative prior with a size fallback learn from records: they come back
    fitted on the bundled TransferGraph records (a few seconds).

    Raises:
        UnknownRankerError: ``name`` is not a known ranker, or its module is not installed.
    """
    if name not in RANKERS:
        raise UnknownRankerError(f"unknown ranker '{name}'; pick one of {', '.join(RANKERS)}")
    module_name, attribute, needs_records = RANKERS[name]
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownRankerError(f"ranker '{name}' is not available ({exc}); pick one of {', '.join(RANKERS)}") from exc
    for part in attribute.split("."):
        target = getattr(target, part)
    if needs_records:
        from ..finetune_records import load_bundled_records

        return target(load_bundled_records())  # type: ignore[operator,no-any-return]
    ranker = target()  # type: ignore[operator]
    if name in FIT_ON_BUNDLED_RECORDS:
        ranker = _fit_on_bundled_records(ranker)
    return ranker  # type: ignore[no-any-return]


def _fit_on_bundled_records(ranker: TrainableRanker) -> Ranker:
    """Fit a trainable ranker on every record shipped with the package (all TransferGraph targets)."""
    from ..finetune_records import load_bundled_records
    from ..hub.index import load_bundled_index
    from ..scorer.ranker import record_tasks

    records = load_bundled_records()
    return ranker.fit(records, load_bundled_index(), record_tasks(records))


__all__ = ["DEFAULT_RANKER", "RANKERS", "Ranker", "TrainableRanker", "UnknownRankerError", "get_ranker"]
