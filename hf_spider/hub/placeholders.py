"""Repos that look like tests or random weights rather than models to fine-tune.

The Hub holds many repos made to test code: ``lysandre/tiny-vit-random``, ``nateraw/test_model_a``,
``AnonymousSub/dummy_2``. They load and run, so nothing else stops them from being ranked, and their fine-tuning
records (often from CI runs) can even put them high on a list. The rule reads only what any record has, the repo
name and the Hub tags: a word of :data:`PLACEHOLDER_WORDS` standing alone in the name (split on ``-``, ``_`` and
``.``, so ``contest`` or ``latest`` never match, while ``Test-Model`` and ``bert_finetuning_test`` do), or as a whole
tag.
The shortlist flags such a repo in its notes, and :class:`~hf_spider.ranking.CandidateFilter` drops it when asked
(``drop_test_repos``): a flag rather than a silent drop, because a real model can be named ``..._test``.
"""

from __future__ import annotations

import re

from .records import ModelRecord

#: Words that name a repo as made for testing or as holding random (untrained) weights.
PLACEHOLDER_WORDS = frozenset({"test", "tests", "testing", "random", "dummy", "debug", "mock", "fake"})
#: The note a flagged repo's shortlist entry carries.
PLACEHOLDER_NOTE = "looks like a test or random-weight repo"

_SEPARATORS = re.compile(r"[-_./\s]+")


def looks_like_placeholder(record: ModelRecord) -> bool:
    """Whether ``record``'s repo name or one of its tags holds a word of :data:`PLACEHOLDER_WORDS`.

    Example:
        >>> looks_like_placeholder(ModelRecord(repo_id="lysandre/tiny-vit-random"))
        True
        >>> looks_like_placeholder(ModelRecord(repo_id="google/vit-base-patch16-224", tags=("vision",)))
        False
    """
    name = record.repo_id.rpartition("/")[2]
    words = set(_SEPARATORS.split(name.lower()))
    words.update(tag.lower() for tag in record.tags or ())  # whole tags: ``dataset:mnist_test`` names no test repo
    return not words.isdisjoint(PLACEHOLDER_WORDS)
