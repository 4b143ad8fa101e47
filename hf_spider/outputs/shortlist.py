"""The ranked answer: a :class:`Shortlist` of :class:`ShortlistEntry`, printable and convertible.

It is what every entry point returns (the CLI, the pipeline, the Space) and what gets pushed to a Hub collection.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .collections import PlannedCall

#: 3: ``license``, ``downloads``, ``last_modified`` on each entry.
SHORTLIST_SCHEMA_VERSION = 3
#: Where a model's Hub page is: ``f"{HUB_URL}/{model_id}"`` (:attr:`ShortlistEntry.url`).
HUB_URL = "https://huggingface.co"
#: What a stage-one score can rest on, strongest first (:attr:`ShortlistEntry.evidence`): the model's own fine-tuning
#: records on related tasks, the records of a model it descends from, measured facts (ImageNet accuracy, pre-training
#: source), its architecture's content features, or its size alone.
EVIDENCE_KINDS = ("records", "lineage", "facts", "content", "size")


@dataclass(frozen=True)
class ShortlistEntry:
    """One ranked candidate.

    Args:
        model_id: the Hub repo id.
        score: the ranker's fitness score (higher is better; comparable within one shortlist only); ``-inf`` for a
            candidate the ranker has nothing to score by (the size prior's model of unknown size), which comes last.
            JSON has no infinity, so the JSON form writes it as ``null`` and reads ``null`` back as ``-inf``.
        rank: 1-based position.
        reasons: short human-readable notes on what moved it (``"re-ranked: LogME 0.91"``, ``"size prior"``).
        num_parameters: parameter count when known, for size-aware views.
        estimator_scores: forward-pass estimator values from re-ranking, by estimator name.
        sha: the revision that was ranked.
        error: why the candidate could not be scored (it then sits at the end), ``None`` otherwise.
        evidence: what the stage-one score rests on, one of :data:`EVIDENCE_KINDS` (``None``: the ranker does not say).
        confidence: how far the stage-one score can be trusted, in [0, 1] (re-ranking trusts forward passes more where
            it is low); ``None`` when the ranker does not say.
        expected_percentile: where the model's fine-tuned accuracy is expected to land, in [0, 100] (100 = the best),
            among the ranker's reference models (the default scorer's: the Hub models of its training records): a
            readable, calibrated view of ``score``, comparable across tasks; ``None`` for an uncalibrated ranker.
        aliases: other repos holding the same checkpoint (re-uploads, copies), collapsed into this entry.
        license / downloads / last_modified: what the Hub says of the repo (its card's license, its downloads over
            the last 30 days, when it last changed), ``None`` where the candidate pool does not record it.
    """

    model_id: str
    score: float
    rank: int
    reasons: tuple[str, ...] = ()
    num_parameters: int | None = None
    estimator_scores: dict[str, float] = field(default_factory=dict)
    sha: str | None = None
    error: str | None = None
    evidence: str | None = None
    confidence: float | None = None
    expected_percentile: float | None = None
    aliases: tuple[str, ...] = ()
    license: str | None = None
    downloads: int | None = None
    last_modified: str | None = None

    @property
    def url(self) -> str:
        """The model's page on the Hub (the id percent-encoded: an id from an untrusted index cannot break a link)."""
        from urllib.parse import quote

        return f"{HUB_URL}/{quote(self.model_id, safe='/')}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = None if self.score == -math.inf else self.score  # ``-Infinity`` is not JSON
        out["reasons"] = list(self.reasons)
        out["aliases"] = list(self.aliases)
        return out


@dataclass(frozen=True)
class Shortlist(Sequence[ShortlistEntry]):
    """Candidates ordered best first, with the task and ranker that produced them."""

    entries: tuple[ShortlistEntry, ...]
    task: str
    ranker: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scores(
        cls,
        scores: dict[str, float],
        *,
        task: str,
        ranker: str,
        reasons: dict[str, Sequence[str]] | None = None,
        num_parameters: dict[str, int | None] | None = None,
        shas: dict[str, str | None] | None = None,
        top_k: int | None = None,
        metadata: dict[str, Any] | None = None,
        evidence: dict[str, str] | None = None,
        confidence: dict[str, float] | None = None,
        expected_percentile: dict[str, float] | None = None,
        errors: dict[str, str] | None = None,
        aliases: dict[str, Sequence[str]] | None = None,
    ) -> Shortlist:
        """Sort models by score (ties broken by model id, so the order is deterministic) and keep ``top_k``.

        A model in ``errors`` (one whose repo could not be read, say) comes after every other, whatever its score,
        with the reason in :attr:`ShortlistEntry.error`.
        """
        errors = errors or {}
        order = sorted(scores, key=lambda m: (m in errors, -scores[m], m))[:top_k]
        entries = tuple(
            ShortlistEntry(
                model_id=m,
                score=float(scores[m]),
                rank=i,
                reasons=tuple((reasons or {}).get(m, ())),
                num_parameters=(num_parameters or {}).get(m),
                sha=(shas or {}).get(m),
                evidence=(evidence or {}).get(m),
                confidence=(confidence or {}).get(m),
                expected_percentile=(expected_percentile or {}).get(m),
                error=errors.get(m),
                aliases=tuple((aliases or {}).get(m, ())),
            )
            for i, m in enumerate(order, start=1)
        )
        return cls(entries=entries, task=task, ranker=ranker, metadata=dict(metadata or {}))

    def with_entries(self, entries: Sequence[ShortlistEntry]) -> Shortlist:
        """A copy holding ``entries`` re-numbered 1..n in the given order."""
        return replace(self, entries=tuple(replace(e, rank=i) for i, e in enumerate(entries, start=1)))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> ShortlistEntry:  # type: ignore[override]
        return self.entries[index]

    def __iter__(self) -> Iterator[ShortlistEntry]:
        return iter(self.entries)

    @property
    def model_ids(self) -> list[str]:
        return [e.model_id for e in self.entries]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SHORTLIST_SCHEMA_VERSION,
            "task": self.task,
            "ranker": self.ranker,
            "metadata": self.metadata,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shortlist:
        """Inverse of :meth:`to_dict`.

        Raises:
            KeyError / TypeError / ValueError: a missing part, or an entry whose id, score, rank or estimator values
                are not what ``to_dict`` writes (a hand-edited ``"score": "high"`` would otherwise fail mid-fusion).
        """
        known = set(ShortlistEntry.__dataclass_fields__)  # a newer writer's extra keys are dropped, not fatal
        entries = tuple(
            _checked(
                ShortlistEntry(
                    **{
                        **{k: v for k, v in e.items() if k in known},
                        "score": -math.inf if e.get("score", 0) is None else e["score"],
                        "reasons": _listed(e.get("reasons", ())),
                        "aliases": _listed(e.get("aliases", ())),
                    }
                )
            )
            for e in data["entries"]
        )
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict) or not isinstance(data["task"], str) or not isinstance(data["ranker"], str):
            raise TypeError("'task' and 'ranker' must be strings and 'metadata' an object")
        return cls(entries=entries, task=data["task"], ranker=data["ranker"], metadata=metadata)

    @classmethod
    def from_json(cls, text: str) -> Shortlist:
        return cls.from_dict(json.loads(text))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Shortlist:
        """The shortlist in a JSON file that ``hf-spider rank --format json`` wrote.

        Raises:
            InvalidShortlistError: the file is not UTF-8, not JSON, or not a shortlist (the message says which).
            FileNotFoundError: there is no such file.
        """
        from ..errors import InvalidShortlistError

        fix = "pass the file `hf-spider rank --format json --output FILE` wrote"
        if Path(path).is_dir():
            raise InvalidShortlistError(f"shortlist '{path}' is a folder; {fix}")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InvalidShortlistError(f"shortlist '{path}' is not UTF-8 text; {fix}") from None
        except RecursionError:  # "[[[[..." nested deeper than the parser goes
            raise InvalidShortlistError(f"shortlist '{path}' nests too deep to be a shortlist; {fix}") from None
        except json.JSONDecodeError as exc:
            raise InvalidShortlistError(
                f"shortlist '{path}' is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {fix}"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            what = "has no 'entries' list" if isinstance(data, dict) else f"holds a {type(data).__name__}"
            raise InvalidShortlistError(f"shortlist '{path}' {what}, so it is not a shortlist; {fix}")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidShortlistError(
                f"shortlist '{path}' has a malformed entry or field ({type(exc).__name__}: {exc}); {fix}"
            ) from None

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**e.to_dict(), "score": e.score} for e in self.entries]  # a frame holds -inf; only JSON cannot
        columns = list(ShortlistEntry.__dataclass_fields__)
        return pd.DataFrame(rows, columns=columns)

    @property
    def shows_percentile(self) -> bool:
        """Whether the displays show :attr:`ShortlistEntry.expected_percentile` (any entry has one) or the raw score."""
        return any(e.expected_percentile is not None for e in self.entries)

    @property
    def value_label(self) -> str:
        """What the value column and the plots show, in words (the raw score always stays in the JSON)."""
        if self.shows_percentile:
            return (
                "expected percentile of the transfer accuracy (fine-tuned, or linear-probe for encoders known by MTEB"
                " records) among the ranker's reference Hub models (100 = best)"
            )
        rerank = self.metadata.get("rerank")
        if isinstance(rerank, dict) and "score" in rerank:
            return f"{rerank['score']}, after re-ranking with {', '.join(rerank.get('estimators', ())) or 'nothing'}"
        return f"raw score of {self.ranker} (higher is better; comparable within this list only)"

    def display_value(self, entry: ShortlistEntry) -> float | None:
        """The number the displays show for ``entry``: its expected percentile, or its raw score (see
        :attr:`shows_percentile`); ``None`` when the percentile is shown but this entry has none."""
        return entry.expected_percentile if self.shows_percentile else entry.score

    def display_rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the table every display shows (terminal, markdown, CSV, the Space), as plain strings.

        Columns: rank, model, the value (``percentile`` or ``score``, see :attr:`value_label`), parameters in
        K / M / B; license, downloads and last modified (a date) when the pool knows them for any entry (``?`` for
        the others); and notes: what the score rests on (evidence) and the entry's own reasons, or why it failed.
        """
        from ..hub.sanitize import escape_for_display
        from .plots import human_count

        hub_columns = [name for name, cell in HUB_COLUMNS.items() if any(cell(e) is not None for e in self.entries)]
        header = ["rank", "model", "percentile" if self.shows_percentile else "score", "params", *hub_columns, "notes"]
        rows = []
        for e in self.entries:
            value = self.display_value(e)
            shown = "?" if value is None else f"{value:.0f}" if self.shows_percentile else f"{value:.4f}"
            params = "?" if e.num_parameters is None else human_count(e.num_parameters)
            hub = [HUB_COLUMNS[name](e) or "?" for name in hub_columns]
            rows.append([str(e.rank), e.model_id, shown, params, *hub, entry_notes(e)])
        return header, [[escape_for_display(cell) for cell in row] for row in rows]  # ids and reasons come from the Hub

    @property
    def notes(self) -> list[str]:
        """Lines printed under every table: what the value column means and the list's own notes (unpinned
        revisions, inputs left out, ...) from ``metadata["notes"]``, escaped like the cells (they quote names)."""
        from ..hub.sanitize import escape_for_display

        notes = [f"{self.display_rows()[0][2]}: {self.value_label}", *self.metadata.get("notes", ())]
        return [escape_for_display(note) for note in notes]

    @property
    def display_names(self) -> tuple[str, str]:
        """The task and ranker names, escaped: a task name is the user's ``--name`` or a dataset's, and may hold
        ANSI escapes or right-to-left overrides that would rewrite the terminal or reorder the line."""
        from ..hub.sanitize import escape_for_display

        return escape_for_display(self.task), escape_for_display(self.ranker)

    def to_markdown(self) -> str:
        header, rows = self.display_rows()
        task, ranker = self.display_names
        title = f"**{task}**, ranked by `{ranker}`\n\n"
        align = "|" + "|".join("---:" if name in NUMERIC_COLUMNS else "---" for name in header) + "|"
        lines = ["| " + " | ".join(header) + " |", align]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        footer = "\n\n".join(f"> {note}" for note in self.notes)
        return title + "\n".join(lines) + "\n\n" + footer + "\n"

    def to_table(self) -> str:
        """A plain-text table for terminals, with the notes under it."""
        head, rows = self.display_rows()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = "  ".join(
            f"{{:{'>' if name in NUMERIC_COLUMNS else '<'}{w}}}" for name, w in zip(head, widths, strict=True)
        )
        task, ranker = self.display_names
        lines = [f"{task} (ranker: {ranker})", fmt.format(*head).rstrip()]
        lines += [fmt.format(*r).rstrip() for r in rows]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_csv(self) -> str:
        """The table every display shows (:meth:`display_rows`, header first) as CSV, for a spreadsheet; the notes
        under the table and the raw scores are in :meth:`to_json`."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        header, rows = self.display_rows()
        writer.writerows([header, *rows])
        return out.getvalue()

    def __str__(self) -> str:
        return self.to_table()

    def pareto_front(self) -> Shortlist:
        """Only the models that no smaller model beats (see :mod:`hf_spider.outputs.pareto`)."""
        from .pareto import pareto_front

        return pareto_front(self)

    def plot_scores(self, **kwargs: Any) -> Figure:
        """Bar chart of the scores (see :func:`hf_spider.outputs.plots.plot_scores`)."""
        from .plots import plot_scores

        return plot_scores(self, **kwargs)

    def plot_size_vs_score(self, **kwargs: Any) -> Figure:
        """Parameters against score with the Pareto front (see :func:`hf_spider.outputs.plots.plot_size_vs_score`)."""
        from .plots import plot_size_vs_score

        return plot_size_vs_score(self, **kwargs)

    def push_to_hub_collection(
        self,
        title: str,
        *,
        namespace: str | None = None,
        private: bool = True,
        token: str | None = None,
        description: str | None = None,
        prune: bool = True,
        date: str | None = None,
        dry_run: bool = False,
    ) -> str | list[PlannedCall]:
        """Create or update the Hub collection ``title`` so it lists these models in rank order; returns its URL.

        Safe to run twice, and running it again after a failure half way resumes it. See
        :func:`hf_spider.outputs.collections.push_to_hub_collection` for the arguments.
        """
        from .collections import push_to_hub_collection

        return push_to_hub_collection(
            self,
            title,
            namespace=namespace,
            private=private,
            token=token,
            description=description,
            prune=prune,
            date=date,
            dry_run=dry_run,
        )


#: How each kind of evidence reads in the notes column.
EVIDENCE_NOTES = {
    "records": "own transfer records",
    "lineage": "base model's records",
    "facts": "card facts",
    "content": "architecture only",
    "size": "size only",
}


def _downloads_cell(entry: ShortlistEntry) -> str | None:
    from .plots import human_count  # plots imports this module

    return None if entry.downloads is None else human_count(entry.downloads)


#: The optional columns of :meth:`Shortlist.display_rows`: each cell from an entry, ``None`` when unknown.
HUB_COLUMNS: dict[str, Callable[[ShortlistEntry], str | None]] = {
    "license": lambda e: e.license,
    "downloads": _downloads_cell,
    "last modified": lambda e: None if e.last_modified is None else e.last_modified[:10],  # ISO date, no time
}
#: Columns right-aligned in the text and markdown tables.
NUMERIC_COLUMNS = frozenset({"rank", "percentile", "score", "params", "downloads"})


def entry_notes(entry: ShortlistEntry) -> str:
    """The notes cell of an entry: ``failed: <why>``, else its evidence and reasons (``"own transfer records;
    license unknown"``)."""
    if entry.error:
        return f"failed: {entry.error}"
    parts = [EVIDENCE_NOTES.get(entry.evidence, entry.evidence)] if entry.evidence else []
    return "; ".join([*parts, *entry.reasons])


def _checked(entry: ShortlistEntry) -> ShortlistEntry:
    """``entry`` if its id is a string and its score, rank and estimator values are numbers, else ``TypeError``."""

    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not isinstance(entry.model_id, str) or not number(entry.score) or not isinstance(entry.rank, int):
        raise TypeError(f"entry {entry.model_id!r}: model_id must be a string, score a number and rank an integer")
    if not isinstance(entry.estimator_scores, dict) or not all(map(number, entry.estimator_scores.values())):
        raise TypeError(f"entry {entry.model_id!r}: estimator_scores must map estimator names to numbers")
    if entry.num_parameters is not None and not isinstance(entry.num_parameters, int):
        raise TypeError(f"entry {entry.model_id!r}: num_parameters must be an integer or null")
    if not all(isinstance(text, str) for text in (*entry.reasons, *entry.aliases)):
        raise TypeError(f"entry {entry.model_id!r}: reasons and aliases must be lists of strings")
    return entry


def _listed(value: object) -> tuple[Any, ...]:
    """A JSON list as a tuple; a string is no list (``tuple("abc")`` would be three reasons)."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(value)
