"""The names one Hub dataset goes by, so a task's dataset can be recognised in a model card or a benchmark's list.

A dataset is named ``org/name`` on the Hub, ``name`` in many cards (``beans``), and a configuration is written after
``:`` by hf-spider (``nyu-mll/glue:cola``) and after ``/`` by cards and TransferGraph's records (``glue/cola``).
"""

from __future__ import annotations

from collections.abc import Iterable


def dataset_keys(names: Iterable[str | None]) -> set[str]:
    """Lower-case keys under which the datasets ``names`` (Hub ids, with an optional ``:config``) may be written:
    the id itself and without its owner, each with and without the configuration as ``/config``.

    Example:
        >>> sorted(dataset_keys(["nyu-mll/glue:cola"]))
        ['glue', 'glue/cola', 'nyu-mll/glue', 'nyu-mll/glue/cola']
    """
    keys: set[str] = set()
    for name in names:
        repo, _, config = (name or "").strip().lower().partition(":")
        if not repo:
            continue
        for base in {repo, repo.rsplit("/", 1)[-1]}:
            keys.add(base)
            if config:
                keys.add(f"{base}/{config}")
    return keys


def card_lists(card_datasets: Iterable[str], keys: set[str]) -> list[str]:
    """The entries of a card's ``datasets`` list that name one of the datasets of ``keys`` (:func:`dataset_keys`),
    written exactly as one of its names (``tweet_eval/emotion`` is not ``dair-ai/emotion``)."""
    return [d for d in card_datasets if d.strip().lower().replace(":", "/") in keys]
