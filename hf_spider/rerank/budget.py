"""Stage two inside ``hf-spider rank --dataset``, the pipeline and the Space: re-rank the top candidates by itself,
within a time budget, whenever their weights can be had.

A user who gives samples gets a list that looked at them. The best :data:`DEFAULT_K` stage-one candidates are run by
successive halving (:func:`~hf_spider.rerank.combine.rerank_shortlist`): all of them on a few samples per class, the
better half on twice as many, and so on up to the full draw, so the budget goes to the candidates still in contention.
No candidate starts once it is expected to end past the budget, so the budget holds to about one candidate's cost
(``benchmarks/rerank_bench.py`` measures it).

Weights can be had when the candidates are local folders, when the Hub can be reached, or, offline
(``HF_HUB_OFFLINE=1``), when they are in the local Hugging Face cache. Offline with none of them cached the list is
stage one's, and its note names the command that fills the cache. Features computed once are cached
(:mod:`.cache`), so asking again with another budget re-runs no forward pass for them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..errors import NothingRerankedError
from ..hub.records import ModelRecord
from ..outputs.shortlist import Shortlist, ShortlistEntry
from .halving import rounds_for
from .options import ForwardOptions

logger = logging.getLogger(__name__)

#: Seconds ``rank --dataset`` spends re-ranking by default, sized for a CPU: successive halving over the top 8 (all on
#: 2 samples per class, the best 4 on 5, the best 2 on 10); loading each model is most of a base-size candidate's cost
#: there. A GPU runs the same schedule in a fraction of it.
DEFAULT_BUDGET_SECONDS = 60.0
#: How many of the best stage-one candidates enter the first round.
DEFAULT_K = 8


def rerank_within_budget(
    shortlist: Shortlist,
    task: Any,
    candidates: Sequence[ModelRecord] = (),
    *,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    k: int = DEFAULT_K,
    options: ForwardOptions | None = None,
) -> Shortlist:
    """Re-rank the best ``k`` candidates of ``shortlist`` on ``task``'s samples within ``budget_seconds``, or return
    ``shortlist`` with a note saying why not (weights out of reach offline, nothing could be run).

    Args:
        shortlist: stage one's list.
        task: the samples (anything :func:`~hf_spider.rerank.samples.load_samples` reads).
        candidates: the candidates' records (revisions, sizes).
        budget_seconds: wall seconds for the whole re-ranking, samples included.
        k: candidates entering the first round of successive halving (``ceil(log2 k)`` rounds).
        options: how candidates are fetched and run (``local_dir`` for a folder of candidates).

    Raises:
        ValueError: a budget that is not positive.
    """
    from .combine import rerank_shortlist

    if not budget_seconds > 0:
        raise ValueError(f"the re-ranking budget must be > 0 seconds, got {budget_seconds}; or skip re-ranking")
    options = options or ForwardOptions()
    pool = [e for e in shortlist if e.error is None][:k]
    if not pool:
        return shortlist
    if not any(weights_reachable(e, options) for e in pool):
        first = pool[0]
        more = f" (and likewise for {', '.join(e.model_id for e in pool[1:4])})" if len(pool) > 1 else ""
        revision = f" --revision {first.sha}" if first.sha else ""
        return with_note(
            shortlist,
            "stage one only: HF_HUB_OFFLINE is set and none of the top candidates' weights is in the local cache; "
            f"fill it with `hf download {first.model_id}{revision}`{more} while online, then rerun",
        )
    try:
        return rerank_shortlist(
            shortlist,
            task,
            candidates,
            k=len(pool),
            budget_seconds=budget_seconds,
            halving_rounds=rounds_for(len(pool)),
            options=options,
        )
    except NothingRerankedError as exc:
        return with_note(shortlist, f"stage one only: {exc}")


def weights_reachable(entry: ShortlistEntry, options: ForwardOptions) -> bool:
    """Whether ``entry``'s weights can be had without failing: a local folder, the Hub online, or the local cache."""
    if options.local_dir is not None:
        from pathlib import Path

        return (Path(options.local_dir) / entry.model_id).is_dir()
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return True
    return isinstance(try_to_load_from_cache(entry.model_id, "config.json", revision=entry.sha), str)


def with_note(shortlist: Shortlist, note: str) -> Shortlist:
    """``shortlist`` with ``note`` added to the notes printed under it."""
    logger.info("%s", note)
    return replace(shortlist, metadata={**shortlist.metadata, "notes": [*shortlist.metadata.get("notes", ()), note]})
