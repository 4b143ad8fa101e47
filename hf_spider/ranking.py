"""Stage one end to end: a task, a candidate pool and a ranker in, a :class:`Shortlist` out.

The CLI, the pipeline and the Space all call :func:`rank`, so filters and ordering are the same everywhere.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidDatasetError, InvalidIndexError, ScorerConfigError, UnknownCandidateError
from .hub.cards import unread_reason
from .hub.dataset_ids import card_lists, dataset_keys
from .hub.dedup import aliases_of, collapse_copies
from .hub.index import read_index
from .hub.live import HubPool, is_dataset_index, query_hub_candidates, read_dataset_index, records_for_ids
from .hub.placeholders import PLACEHOLDER_NOTE, looks_like_placeholder
from .hub.pool import load_default_pool
from .hub.records import ModelRecord, checked_record
from .outputs.shortlist import EVIDENCE_KINDS, Shortlist, ShortlistEntry
from .rankers.base import ExplainingRanker, Ranker
from .tokens.pool_tokens import register_index
from .tokens.task import TaskTokens

if TYPE_CHECKING:
    from .tokens.sources import TaskSource


#: Fields a filter may be unable to check because the record does not have them (see :class:`CandidateFilter`).
FILTERED_FIELDS = ("size", "license", "library", "creation date")


@dataclass(frozen=True)
class CandidateFilter:
    """Which candidates may be ranked. Gated models are excluded by default: a user may not be able to download them.

    A record that does not say what a filter asks about (no parameter count under ``max_parameters``, no license
    under ``licenses``: none of the bundled pool records a license) is *kept and flagged* by default: its shortlist
    entry notes ``license unknown`` so the user checks its card, and a filter never empties a pool only because the
    metadata is missing. ``drop_unknown=True`` drops such records instead. Likewise a repo that looks like a test or
    random weights (:mod:`hf_spider.hub.placeholders`) is kept and noted unless ``drop_test_repos``.

    Args:
        max_parameters: drop models known to be larger.
        licenses: keep only these licenses (``None`` keeps all); compared case-insensitively.
        libraries: keep only these libraries (``None`` keeps all).
        include_gated: keep gated models.
        drop_unknown: drop, rather than keep and flag, a model whose size / license / library an active filter
            cannot check, and a model whose repo could not be read (:func:`~hf_spider.hub.cards.unread_reason`),
            which is otherwise ranked below every model that was read.
        drop_test_repos: drop, rather than keep and flag, repos whose name or tags say test or random weights.
        created_after: keep only models created on the Hub on or after this day (the listing's ``createdAt``): the
            recency cut of a pool; a model whose creation date is not recorded (every model of the bundled pool) is
            kept and noted unless ``drop_unknown``.
    """

    max_parameters: int | None = None
    licenses: frozenset[str] | None = None
    libraries: frozenset[str] | None = None
    include_gated: bool = False
    drop_unknown: bool = False
    drop_test_repos: bool = False
    created_after: date | None = None

    @property
    def _licenses_lower(self) -> frozenset[str]:
        return frozenset(name.lower() for name in self.licenses or ())

    def unknown(self, record: ModelRecord) -> tuple[str, ...]:
        """The fields of :data:`FILTERED_FIELDS` that an active filter asks about and ``record`` does not have."""
        missing = {
            "size": self.max_parameters is not None and record.num_parameters is None,
            "license": self.licenses is not None and not record.license,
            "library": self.libraries is not None and not record.library_name,
            "creation date": self.created_after is not None and created_on(record) is None,
        }
        return tuple(name for name in FILTERED_FIELDS if missing[name])

    def keep(self, record: ModelRecord) -> bool:
        if record.gated and not self.include_gated:
            return False
        if self.max_parameters is not None and (record.num_parameters or 0) > self.max_parameters:
            return False
        if self.licenses is not None and record.license and record.license.lower() not in self._licenses_lower:
            return False
        if self.libraries is not None and record.library_name and record.library_name not in self.libraries:
            return False
        created = created_on(record)
        if self.created_after is not None and created is not None and created < self.created_after:
            return False
        if self.drop_test_repos and looks_like_placeholder(record):
            return False
        return not (self.drop_unknown and (self.unknown(record) or unread_reason(record.error)))

    def notes(self, record: ModelRecord) -> tuple[str, ...]:
        """What the shortlist says about a kept record: the fields the filters could not check (``"license
        unknown"``), and whether it looks like a test or random-weight repo."""
        placeholder = (PLACEHOLDER_NOTE,) if looks_like_placeholder(record) else ()
        return (*(f"{name} unknown" for name in self.unknown(record)), *placeholder)


def created_on(record: ModelRecord) -> date | None:
    """The day a model was created on the Hub, from its ``created_at`` (an ISO timestamp as the Hub sends it); ``None``
    when it is missing or not a date (Hub content is untrusted)."""
    try:
        return date.fromisoformat((record.created_at or "")[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class RankingTask:
    """A task read for ranking: the tokens stage one scores from, and the samples stage two runs candidates on.

    Args:
        tokens: label-name embeddings and statistics (or the tokens the caller built itself).
        source: the loaded split (:class:`~hf_spider.tokens.sources.TaskSource`), ``None`` for a task known by its
            label names or given as tokens.
    """

    tokens: TaskTokens
    source: TaskSource | None = None


def read_task(
    task: Any,
    *,
    split: str | None = None,
    config: str | None = None,
    label_column: str | None = None,
    input_column: str | None = None,
    name: str | None = None,
    sample_encoders: Mapping[str, str] | None = None,
    text_encoder: str | None = None,
    task_text: str | None = None,
) -> RankingTask:
    """Read a task the way every entry point does (CLI, pipeline, Space), so the same input ranks the same everywhere.

    A dataset (a ``datasets`` object, a local path, a Hub dataset id) is described by
    :func:`~hf_spider.tokens.sources.load_task_source`. By default it stands in stage one by its label-name
    embeddings and statistics: the default scorer was trained on tasks known by their label names, so stage one
    encodes no sample and needs no image encoder (it works offline with the text encoder alone), and the tokens note
    that stage one did not read the samples (:func:`samples_not_read_note`). A scorer trained with class prototypes
    (``sample_encoders``, its encoders by modality) gets them: the dataset's samples are encoded with the scorer's own
    encoder (:func:`~hf_spider.tokens.build.build_task_tokens`). :class:`TaskTokens` given by the caller are used as
    they are.

    Args:
        task: a ``datasets`` object, a local path, a Hub dataset id, a :class:`TaskDescription` or
            :class:`TaskTokens`.
        split / config / label_column / input_column: see :func:`~hf_spider.tokens.sources.load_task_source`.
        name: the task name shown in the shortlist (default: the dataset's).
        sample_encoders: the sample encoder per modality of a scorer that reads class prototypes (``None``: the
            ranker reads label names only).
        text_encoder: the text encoder of the label-name embeddings (default: the package's).
        task_text: what the task is in words (``--task``); it joins the label names and samples, which all count
            (:mod:`hf_spider.scorer.task_aware`).

    Raises:
        InvalidDatasetError: the dataset cannot be used (see ``load_task_source``).
    """
    from .tokens.build import build_task_tokens, task_tokens_from_labels
    from .tokens.sources import load_task_source
    from .tokens.task import TaskDescription

    if task_text:
        return _described(
            read_task(
                task,
                split=split,
                config=config,
                label_column=label_column,
                input_column=input_column,
                name=name,
                sample_encoders=sample_encoders,
                text_encoder=text_encoder,
            ),
            task_text,
        )
    if isinstance(task, TaskTokens):
        return RankingTask(tokens=task)
    if isinstance(task, TaskDescription):
        repeated = sorted(name for name, count in Counter(task.label_names).items() if count > 1)
        if repeated:
            raise InvalidDatasetError(
                f"label name(s) {', '.join(map(repr, repeated))} given more than once; name each class once"
            )
        description = replace(task, name=name) if name else task
        return RankingTask(tokens=task_tokens_from_labels(description, text_encoder=text_encoder))
    source = load_task_source(task, split=split, config=config, label_column=label_column, input_column=input_column)
    description = replace(source.description, name=name) if name else source.description
    encoder = (sample_encoders or {}).get(description.modality)
    if encoder is not None:
        tokens = build_task_tokens(
            task,
            split=split,
            config=config,
            label_column=label_column,
            input_column=input_column,
            text_encoder=text_encoder if description.modality == "image" else encoder,
            image_encoder=encoder if description.modality == "image" else None,
        )
        tokens = replace(tokens, description=replace(tokens.description, name=description.name))
    else:
        tokens = task_tokens_from_labels(description, text_encoder=text_encoder)
        tokens = replace(tokens, sampling={**tokens.sampling, "samples_not_read": True})
    if source.unreadable:
        tokens = replace(tokens, sampling={**tokens.sampling, "unreadable_inputs": len(source.unreadable)})
    if source.notes:  # rows left out, labels of mixed types: shown under the shortlist
        tokens = replace(tokens, sampling={**tokens.sampling, "data_notes": list(source.notes)})
    return RankingTask(tokens=tokens, source=source)


def _described(task: RankingTask, description: str) -> RankingTask:
    """``task`` with ``description`` as its words (the label-name embeddings and samples stay as read)."""
    tokens = task.tokens
    return replace(task, tokens=replace(tokens, description=replace(tokens.description, description=description)))


def task_reading(ranker: Ranker) -> dict[str, Any]:
    """How a task must be read for ``ranker`` (the keyword arguments of :func:`read_task`): the sample encoders and
    text encoder of a scorer trained with class prototypes, nothing for a ranker that reads label names only."""
    scorer = getattr(ranker, "scorer", ranker)  # a SpiderRanker wraps its TransferScorer
    return {
        "sample_encoders": getattr(scorer, "sample_encoders", None),
        "text_encoder": getattr(scorer, "text_encoder", None),
    }


#: The keys of a Hub query as candidates (:func:`~hf_spider.hub.live.query_hub_candidates`' arguments).
HUB_QUERY_KEYS = frozenset({"pipeline_tag", "library", "search", "author", "sort", "limit", "token"})


def load_candidates(
    pool: str | os.PathLike[str] | Sequence[ModelRecord | str] | Mapping[str, Any] | None = None,
    *,
    modality: str | None = None,
) -> list[ModelRecord]:
    """The candidate pool from any of its forms: the embedded default pool (``None`` / ``"bundled"``,
    :mod:`hf_spider.hub.pool`), the live Hub's listing for ``modality`` (``"hub"``), an index pushed to a dataset repo
    (``"hf://datasets/ORG/NAME"``), a Hub query (a mapping of :func:`~hf_spider.hub.live.query_hub_candidates`'
    arguments), an index file, a folder of Hub-style repos (one sub-folder per model with ``config.json`` and
    ``README.md``), repo ids (the default pool's records where it knows them, else the Hub's) or records.

    Raises:
        InvalidIndexError: an empty path, a missing or malformed index file, ``"hub"`` without a modality, a Hub query
            with an unknown key, a list mixing records with other things, or a record whose fields hold what no
            index row may (a count given as a string, tags as one string).
        UnknownCandidateError: a repo id the Hub does not know.
    """
    if isinstance(pool, Mapping):
        unknown = sorted(set(map(str, pool)) - HUB_QUERY_KEYS)
        if unknown:
            raise InvalidIndexError(
                f"unknown Hub query key(s) {', '.join(unknown)}; a query takes {', '.join(sorted(HUB_QUERY_KEYS))}"
            )
        return query_hub_candidates(**pool)
    if pool is None or pool == "bundled":
        return load_default_pool()
    if pool == "hub":
        if modality is None:
            raise InvalidIndexError("the 'hub' pool lists the Hub for one modality; name the task's modality")
        return HubPool(modality).records()
    if is_dataset_index(pool):
        return read_dataset_index(str(pool))
    if not isinstance(pool, (str, os.PathLike)):
        given = list(pool)
        records = [c for c in given if isinstance(c, ModelRecord)]
        if len(records) == len(given):
            return [_checked(record) for record in records]
        if records or not all(isinstance(c, str) for c in given):
            raise InvalidIndexError(
                "candidates must be all repo ids (strings) or all ModelRecords; got a mix or other types"
            )
        return records_for_ids([str(c) for c in given])
    if not os.fspath(pool).strip():  # Path("") is the current folder: it would read whatever repos lie there
        raise InvalidIndexError(
            "the candidate pool path is empty; pass an index file, a folder of model repos or 'bundled'"
        )
    path = Path(pool)
    if path.is_dir():
        from .hub.local import records_from_dir

        return records_from_dir(path)
    if not path.exists():
        raise InvalidIndexError(
            f"candidate pool '{path}' does not exist; pass an index file, a folder of model repos or 'bundled'"
        )
    records = read_index(path)
    register_index(path, records)  # ranking them reads their PTM tokens from a cache built once
    return records


def _checked(record: ModelRecord) -> ModelRecord:
    """A record handed in by the caller, held to the rule an index row is read with
    (:func:`~hf_spider.hub.records.checked_record`)."""
    try:
        return checked_record(record)
    except ValueError as exc:
        raise InvalidIndexError(
            f"candidate {str(record.repo_id)[:80]!r} is not a valid model record ({exc}); fix the ModelRecord"
        ) from None


def select_candidates(
    candidates: Sequence[ModelRecord],
    *,
    modality: str,
    model_ids: Sequence[str] | None = None,
    candidate_filter: CandidateFilter | None = None,
) -> list[ModelRecord]:
    """Candidates of the task's modality (records of unknown modality are kept), by id if given, filtered, with copies
    of one checkpoint collapsed into one entry (:func:`~hf_spider.hub.dedup.collapse_copies`; an alias in
    ``model_ids`` names its original).

    Raises:
        UnknownCandidateError: an id in ``model_ids`` is not in the pool.
        InvalidIndexError: nothing is left to rank.
    """
    candidates = collapse_copies(candidates)
    if model_ids is not None:
        by_id = {alias: c for c in candidates for alias in aliases_of(c)}
        by_id.update({c.repo_id: c for c in candidates})
        unknown = [m for m in model_ids if m not in by_id]
        if unknown:
            raise UnknownCandidateError(
                f"unknown candidate id(s) {', '.join(unknown)}: not in the candidate pool; check the ids or crawl them"
            )
        candidates = list({by_id[m].repo_id: by_id[m] for m in model_ids}.values())
    kept = [c for c in candidates if c.modality in (modality, None)]
    if candidate_filter is not None:
        kept = [c for c in kept if candidate_filter.keep(c)]
    if not kept:
        raise InvalidIndexError(
            f"no {modality} candidate is left to rank after filtering; widen the filters or use another pool"
        )
    return kept


def rank(
    task: TaskTokens,
    candidates: Sequence[ModelRecord],
    *,
    ranker: Ranker,
    top_k: int | None = None,
    candidate_filter: CandidateFilter | None = None,
    local_dir: str | os.PathLike[str] | None = None,
) -> Shortlist:
    """Score every candidate with ``ranker`` (one batched call) and return the best ``top_k`` as a shortlist.

    A ranker that explains its scores (:class:`~hf_spider.rankers.base.ExplainingRanker`, the default scorer) fills
    each entry's evidence, confidence, expected percentile and reason, and the metadata counts the evidence kinds over
    the whole pool. ``candidate_filter`` (the one the candidates were selected with) adds its notes (``"license
    unknown"``) to the entries. The shortlist's ``metadata["notes"]`` says what a reader must know about the whole
    list (a pool known mostly by size, candidates of unknown modality, unpinned revisions, unreadable inputs), and
    ``metadata["read"]`` what stage one read of the task (``"label names"`` or ``"samples"``: class prototypes).
    ``local_dir`` is the folder the candidates are read from in place (``<local_dir>/<repo id>``: a pool given as a
    folder of repos, ``--local-dir``): no candidate is fetched from the Hub, so no revision is noted as unpinned.
    Each entry carries what the Hub says of its repo (license, downloads, last modified) where the record has it, and
    a reason when its card lists the dataset the task's samples come from among its training data
    (:func:`~hf_spider.hub.dataset_ids.card_lists`): such a model may need no fine-tuning at all.

    A candidate whose repo could not be read (a broken ``config.json``, a crawl that recorded ``bad_config``: see
    :func:`~hf_spider.hub.cards.unread_reason`) is ranked below every candidate that was read, with its reason in
    ``error`` and in ``metadata["unread"]`` (kept there when ``top_k`` cuts it): scored by size alone, it would
    otherwise pass for an average model. This rule is here, so the CLI, the pipeline and the Space apply it alike.

    Raises:
        InvalidIndexError: no candidate (an empty list is no ranking).
        ValueError: ``top_k`` below 0 (``None`` or 0 keeps every candidate).
    """
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}; pass None or 0 for every candidate")
    if not candidates:
        raise InvalidIndexError("no candidate to rank; pass at least one model record")
    top_k = top_k or None  # 0, as in the CLI and the pipeline: every candidate
    unread = {c.repo_id: reason for c in candidates if (reason := unread_reason(c.error))}
    ids = [c.repo_id for c in candidates]
    by_id = {c.repo_id: c for c in candidates}
    notes = candidate_filter.notes if candidate_filter is not None else (lambda record: ())
    aliases: dict[str, Sequence[str]] = {m: aliases_of(c) for m, c in by_id.items()}
    keys = dataset_keys([task.description.hub_dataset])
    reasons: dict[str, Sequence[str]] = {
        m: (
            *notes(c),
            *([f"copies collapsed here: {', '.join(aliases[m])}"] if aliases[m] else []),
            *(f"its card lists {d} as training data" for d in card_lists(c.datasets or (), keys)),
        )
        for m, c in by_id.items()
    }
    metadata: dict[str, Any] = {
        "candidates": len(candidates),
        "modality": task.description.modality,
        "read": "label names" if task.prototypes is None else "samples",
    }
    extra: dict[str, dict[str, Any]] = {}
    if isinstance(ranker, ExplainingRanker):
        explained = ranker.explain(task, candidates)
        scores = explained.scores
        reasons = {m: (detail, *reasons[m]) for m, detail in zip(ids, explained.details, strict=True)}
        extra = {
            "evidence": dict(zip(ids, explained.evidence, strict=True)),
            "confidence": {m: float(c) for m, c in zip(ids, explained.confidence, strict=True)},
            "expected_percentile": {m: round(100.0 * float(s), 1) for m, s in zip(ids, scores, strict=True)},
        }
        metadata["evidence"] = {k: explained.evidence.count(k) for k in EVIDENCE_KINDS if k in explained.evidence}
    else:
        scores = ranker.score(task, candidates)
    # -inf is a score: nothing to rank the candidate by, so it comes last. NaN and +inf order nothing.
    unscored = [m for m, s in zip(ids, scores, strict=True) if math.isnan(float(s)) or float(s) == math.inf]
    if unscored:
        raise ScorerConfigError(
            f"ranker '{ranker.name}' gave {len(unscored)} candidate(s) a score that is not a finite number (first: "
            f"{unscored[0]}); the task's tokens or the scorer's weights hold nan or inf: rebuild them"
        )
    if unread:
        metadata["unread"] = unread
        if "expected_percentile" in extra:  # no calibrated view of a score that rests on nothing read
            extra["expected_percentile"] = {m: p for m, p in extra["expected_percentile"].items() if m not in unread}
    list_notes = _list_notes(task, candidates, metadata.get("evidence") or {}, from_hub=local_dir is None)
    if list_notes:
        metadata["notes"] = list_notes
    shortlist = Shortlist.from_scores(
        {m: float(s) for m, s in zip(ids, scores, strict=True)},
        task=task.description.name,
        ranker=ranker.name,
        reasons=reasons,
        num_parameters={m: c.num_parameters for m, c in by_id.items()},
        shas={m: c.sha for m, c in by_id.items()},
        aliases=aliases,
        top_k=top_k,
        metadata=metadata,
        errors=unread,
        **extra,
    )
    return shortlist.with_entries([_with_hub_facts(e, by_id[e.model_id]) for e in shortlist])


def _with_hub_facts(entry: ShortlistEntry, record: ModelRecord) -> ShortlistEntry:
    """``entry`` with what the Hub says of its repo, for the shortlist's license / downloads / last-modified
    columns (``None`` where the pool does not know: the bundled pool records none of them)."""
    return replace(entry, license=record.license, downloads=record.downloads, last_modified=record.last_modified)


def _list_notes(
    task: TaskTokens, candidates: Sequence[ModelRecord], evidence: dict[str, int], *, from_hub: bool = True
) -> list[str]:
    """One line per fact about the whole shortlist that changes how to read it; ``from_hub``: the candidates are
    fetched from the Hub, at their recorded revision or else at the current one (not read from a local folder)."""
    notes = []
    total = sum(evidence.values())
    unrecorded = total - evidence.get("records", 0) - evidence.get("lineage", 0)  # lineage reads its ancestor's task
    if evidence and evidence.get("size", 0) * 2 > total:
        notes.append(
            f"{evidence['size']} of the {total} candidates are known by their size alone (no records, "
            "lineage, ImageNet facts or architecture): their order says little; crawl their configs and cards "
            "(`hf-spider crawl --with-config --with-card`) or re-rank them with forward passes (`hf-spider rerank`)"
        )
    elif evidence and unrecorded * 2 > total:
        notes.append(
            f"{unrecorded} of the {total} candidates have no transfer record, nor an ancestor with one: their "
            "scores come from what the Hub says about them (ImageNet facts, architecture, size) and are the same for "
            "every task; forward passes on the task's samples make the top of the list task-specific (`hf-spider "
            "rank --dataset` runs them on the top candidates unless --no-rerank)"
        )
    unread = [(c.repo_id, reason) for c in candidates if (reason := unread_reason(c.error))]
    if unread:
        notes.append(
            f"{len(unread)} candidate(s) could not be read and rank below every other (first: '{unread[0][0]}': "
            f"{unread[0][1]}); fix their repos, or leave them out with --drop-unknown (drop_unknown=True)"
        )
    unknown = sum(c.modality is None for c in candidates)
    if unknown:
        notes.append(
            f"{unknown} candidate(s) say nothing of their modality (no pipeline tag, library or known architecture) "
            f"and were ranked as {task.description.modality} models; check their cards or leave them out with --models"
        )
    unpinned = sum(c.sha is None for c in candidates)
    if unpinned and from_hub:  # a folder's repos are read as they are there: no Hub revision to pin
        whole = "none of the" if unpinned == len(candidates) else f"{unpinned} of the {len(candidates)}"
        notes.append(
            f"{whole} candidates record a revision: a model fetched from the Hub comes at its current main revision, "
            "which may differ from the one ranked; crawl an index (`hf-spider crawl`) to pin"
        )
    if task.sampling.get("samples_not_read"):
        notes.append(samples_not_read_note())
    unreadable = int(task.sampling.get("unreadable_inputs", 0))
    if unreadable:
        notes.append(f"{unreadable} unreadable input file(s) of the dataset were left out; fix or delete them")
    notes += task.sampling.get("data_notes", [])
    return notes


def samples_not_read_note(reranked: int = 0) -> str:
    """The note of a shortlist of a dataset whose stage one read its label names, not its samples (a scorer without
    class prototypes, :func:`read_task`). Made with stage one's list; stage two, which runs ``reranked`` candidates
    on the samples, swaps it for this note with their count (:func:`~hf_spider.rerank.combine.rerank_shortlist`)."""
    rerun = f"; stage two re-ranked {reranked} candidate(s) on them" if reranked else ""
    return (
        "stage one did not read the dataset's samples: this scorer knows tasks by their label names only (its model "
        f"card says so){rerun}; a scorer trained with class prototypes (`hf-spider train-scorer --content-path` on "
        "`hf-spider build-records` records) reads them in stage one"
    )


def default_ranker() -> Ranker:
    """The ranker used when none is named: the shipped Model Spider scorer (``hf_spider/data/scorer``)."""
    from .rankers import get_ranker

    return get_ranker()
