"""Successive halving's schedule, in one place: how many rounds a re-ranking of ``k`` candidates runs, how many
samples per class each round reads, and how many candidates each round keeps.

``rank --dataset`` runs it (:func:`~hf_spider.rerank.combine.rerank_shortlist`, with the rounds of
:func:`~hf_spider.rerank.budget.rerank_within_budget`), a budget of forward passes counts it, and the fusion's
validation replays it (:func:`~hf_spider.rerank.validation.halving_order_scores`), so what the validation scores is
the path users run.
"""

from __future__ import annotations

import math


def rounds_for(k: int) -> int:
    """``ceil(log2 k)`` rounds, at least one: each keeps the better half, so the last one orders the best two."""
    return max(1, math.ceil(math.log2(k)))


def per_class_of_rounds(held: int, rounds: int) -> list[int]:
    """Samples per class each of ``rounds`` rounds reads: all ``held`` in the last, half as many in each round
    before (at least one), so the many early candidates are cheap and the few late ones well measured."""
    return [max(1, held >> (rounds - 1 - r)) for r in range(rounds)]


def kept(n: int, *, last: bool) -> int:
    """How many of a round's ``n`` candidates go on: the better half (rounded up), or every one in the last round."""
    return n if last else (n + 1) // 2
