"""The accuracy-versus-size front of a shortlist: the models no smaller model beats.

A user with a memory or latency budget wants the best model *at each size*, not the single best one. A model is on
the front when no other model is both at least as good (score) and at most as large (parameters), with one of the two
strictly better. A model of unknown size cannot be placed, so it is never on the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .shortlist import Shortlist, ShortlistEntry


def pareto_entries(entries: Sequence[ShortlistEntry]) -> list[ShortlistEntry]:
    """Entries on the score-versus-size front, best score first.

    Sorting by size (then score, best first) lets one pass keep each entry that beats every smaller one: O(n log n)
    instead of comparing all pairs.
    """
    sized = sorted((e for e in entries if e.num_parameters is not None), key=lambda e: (e.num_parameters, -e.score))
    front: list[ShortlistEntry] = []
    best = float("-inf")
    for entry in sized:
        if entry.score > best:
            front.append(entry)
            best = entry.score
    return sorted(front, key=lambda e: (-e.score, e.model_id))


def pareto_front(shortlist: Shortlist) -> Shortlist:
    """A copy of ``shortlist`` holding only its front (re-numbered 1..n), with ``metadata["pareto"] = True``."""
    from dataclasses import replace

    front = shortlist.with_entries(pareto_entries(shortlist.entries))
    return replace(front, metadata={**shortlist.metadata, "pareto": True})
