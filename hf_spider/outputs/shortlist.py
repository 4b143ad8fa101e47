"""The ranked answer: a :class:`Shortlist` of :class:`ShortlistEntry`, printable and convertible.

It is what every entry point returns (the CLI, the pipeline, the Space) and what gets pushed to a Hub collection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .collections import PlannedCall

SHORTLIST_SCHEMA_VERSION = 2
#: What a stage-one score can rest on, strongest first (:attr:`ShortlistEntry.evidence`): the model's own fine-tuning
#: records on related tasks, the records of a model it descends from, measured facts (ImageNet accuracy, pre-training
#: source), its architecture's content features, or its size alone.
EVIDENCE_KINDS = ("records", "lineage", "facts", "content", "size")


@dataclass(frozen=True)
class ShortlistEntry:
    """One ranked candidate.

    Args:
        model_id: the Hub repo id.
        score: the ranker's fitness score (higher is better; comparable within one shortlist only).
        rank: 1-based position.
        reasons: short human-readable notes on what moved it (``"re-ranked: LogME 0.91"``, ``"size prior"``).
        num_parameters: parameter count when known, for size-aware views.
        estimator_scores: forward-pass estimator values from re-ranking, by estimator name.
        sha: the revision that was ranked.
        error: why the candidate could not be scored (it then sits at the end), ``None`` otherwise.
        evidence: what the stage-one score rests on, one of :data:`EVIDENCE_KINDS` (``None``: the ranker does not say).
        confidence: how far the stage-one score can be trusted, in [0, 1] (re-ranking trusts forward passes more where
            it is low); ``None`` when the ranker does not say.
        expected_percentile: where the model's fine-tuned accuracy is expected to land among the candidates, in
            [0, 100] (100 = the best): a readable, calibrated view of ``score``; ``None`` for an uncalibrated ranker.
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

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
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
    ) -> Shortlist:
        """Sort models by score (ties broken by model id, so the order is deterministic) and keep ``top_k``."""
        order = sorted(scores, key=lambda m: (-scores[m], m))[:top_k]
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
        known = set(ShortlistEntry.__dataclass_fields__)  # a newer writer's extra keys are dropped, not fatal
        entries = tuple(
            ShortlistEntry(**{**{k: v for k, v in e.items() if k in known}, "reasons": tuple(e.get("reasons", ()))})
            for e in data["entries"]
        )
        return cls(entries=entries, task=data["task"], ranker=data["ranker"], metadata=data.get("metadata", {}))

    @classmethod
    def from_json(cls, text: str) -> Shortlist:
        return cls.from_dict(json.loads(text))

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        rows = [e.to_dict() for e in self.entries]
        columns = list(ShortlistEntry.__dataclass_fields__)
        return pd.DataFrame(rows, columns=columns)

    def _table_rows(self) -> list[list[str]]:
        from ..hub.sanitize import escape_for_display

        rows = []
        for e in self.entries:
            params = "?" if e.num_parameters is None else _human_count(e.num_parameters)
            note = e.error or "; ".join(e.reasons)
            rows.append([str(e.rank), e.model_id, f"{e.score:.4f}", params, note])
        return [[escape_for_display(cell) for cell in row] for row in rows]  # ids and reasons may come from the Hub

    def to_markdown(self) -> str:
        header = f"**{self.task}**, ranked by `{self.ranker}`\n\n"
        lines = ["| rank | model | score | params | notes |", "|---:|---|---:|---:|---|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._table_rows()]
        return header + "\n".join(lines) + "\n"

    def to_table(self) -> str:
        """A plain-text table for terminals."""
        head = ["rank", "model", "score", "params", "notes"]
        rows = self._table_rows()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = "  ".join(f"{{:{'>' if i in (0, 2, 3) else '<'}{w}}}" for i, w in enumerate(widths))
        lines = [f"{self.task} (ranker: {self.ranker})", fmt.format(*head)]
        lines += [fmt.format(*r).rstrip() for r in rows]
        return "\n".join(lines)

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


def _human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
