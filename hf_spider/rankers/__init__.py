"""Every ranker by name, in one registry: ``get_ranker("spider")`` (the default) ready to use, and
``trainable_ranker(name)`` fresh for the evaluation protocols to fit.

Modules are imported on demand (by name, in :data:`RANKERS`), so naming a ranker never imports torch for another one,
and this registry imports none of the rankers it names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import HfSpiderError
from .base import Ranker, TrainableRanker


@dataclass(frozen=True)
class RankerSpec:
    """Where a ranker lives and how it is built.

    Args:
        module: the module that holds it, imported on first use.
        ready: attribute (dotted) that builds the ready-to-use ranker (``get_ranker``).
        fresh: attribute that builds an unfitted :class:`TrainableRanker` for the evaluation protocols
            (``trainable_ranker``); ``None``: the ranker cannot be refitted.
        seeded: ``fresh`` takes ``seed=`` (the learned rankers); the others are deterministic.
        needs_records: ``ready`` is called with the bundled TransferGraph records.
        fit_on_bundled: the ready ranker is fitted on the bundled records before it is returned.
        ready_module: the module of ``ready`` when it is not ``module`` (the shipped scorer loads without torch from
            :mod:`hf_spider.scorer.inference`; training needs torch).
    """

    module: str
    ready: str
    fresh: str | None = None
    seeded: bool = False
    needs_records: bool = False
    fit_on_bundled: bool = False
    ready_module: str | None = None


RANKERS: dict[str, RankerSpec] = {
    "spider": RankerSpec(
        "hf_spider.scorer.ranker",
        "load_spider_ranker",
        "SpiderRanker.untrained",
        True,
        ready_module="hf_spider.scorer.inference",
    ),
    "graph": RankerSpec("hf_spider.rankers.graph", "GraphRanker", "GraphRanker", True, fit_on_bundled=True),
    "fennec": RankerSpec("hf_spider.rankers.fennec", "FennecRanker", "FennecRanker", True, fit_on_bundled=True),
    "collab_prior": RankerSpec(
        "hf_spider.rankers.baselines", "CollaborativePrior", "trainable_collab_prior", needs_records=True
    ),
    "size_prior": RankerSpec("hf_spider.rankers.baselines", "SizePrior", "trainable_size_prior"),
    "collab_prior_size_fallback": RankerSpec(
        "hf_spider.rankers.baselines", "CollabPriorSizeFallback", "CollabPriorSizeFallback", fit_on_bundled=True
    ),
}
DEFAULT_RANKER = "spider"
#: Rankers the evaluation protocols can refit per step (``hf-spider evaluate --ranker``), in table order.
TRAINABLE_RANKERS = tuple(name for name, spec in RANKERS.items() if spec.fresh is not None)
#: The transparent priors a learned ranker is judged against (always run by ``hf-spider evaluate``).
PRIORS = ("collab_prior", "size_prior", "collab_prior_size_fallback")


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
    spec = _spec(name, RANKERS)
    build = _attribute(name, spec.ready_module or spec.module, spec.ready)
    if spec.needs_records:
        from ..finetune_records import load_bundled_records

        return build(load_bundled_records())  # type: ignore[no-any-return]
    ranker = build()
    if spec.fit_on_bundled:
        ranker = _fit_on_bundled_records(ranker)
    return ranker  # type: ignore[no-any-return]


def trainable_ranker(name: str, *, seed: int = 0) -> TrainableRanker:
    """A fresh, unfitted ranker by name (:data:`TRAINABLE_RANKERS`); ``seed`` seeds the learned ones.

    Raises:
        UnknownRankerError: ``name`` is not a trainable ranker, or its module is not installed.
    """
    spec = _spec(name, {n: RANKERS[n] for n in TRAINABLE_RANKERS})
    build = _attribute(name, spec.module, spec.fresh or "")
    return build(seed=seed) if spec.seeded else build()  # type: ignore[no-any-return]


def _spec(name: str, known: dict[str, RankerSpec]) -> RankerSpec:
    if name not in known:
        raise UnknownRankerError(f"unknown ranker '{name}'; pick one of {', '.join(known)}")
    return known[name]


def _attribute(name: str, module: str, attribute: str) -> Any:
    try:
        target: object = importlib.import_module(module)
    except ImportError as exc:
        raise UnknownRankerError(f"ranker '{name}' is not available ({exc}); pick one of {', '.join(RANKERS)}") from exc
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def _fit_on_bundled_records(ranker: TrainableRanker) -> Ranker:
    """Fit a trainable ranker on every record shipped with the package (all TransferGraph targets)."""
    from ..finetune_records import load_bundled_records, record_tasks
    from ..hub.index import load_bundled_index

    records = load_bundled_records()
    return ranker.fit(records, load_bundled_index(), record_tasks(records))


__all__ = [
    "DEFAULT_RANKER",
    "PRIORS",
    "RANKERS",
    "TRAINABLE_RANKERS",
    "Ranker",
    "RankerSpec",
    "TrainableRanker",
    "UnknownRankerError",
    "get_ranker",
    "trainable_ranker",
]
