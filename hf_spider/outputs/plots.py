"""Matplotlib views of a shortlist: a bar chart of scores and a size-versus-score scatter with its Pareto front.

Figures are built with :class:`matplotlib.figure.Figure` rather than ``pyplot``: no global state, no GUI backend,
safe in the Space's worker threads, and the caller decides whether to show, save or hand the figure to Gradio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pareto import pareto_entries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .shortlist import Shortlist, ShortlistEntry

#: Longest model id shown in full on an axis; longer ids keep their tail (the model name), not the namespace.
MAX_LABEL_CHARS = 40


def plot_scores(shortlist: Shortlist, *, ax: Axes | None = None) -> Figure:
    """Horizontal bars of the scores, best at the top. Returns the figure (a new one unless ``ax`` is given)."""
    ax = _axes(ax, height=max(2.5, 0.35 * len(shortlist) + 1.2))
    labels = [f"{e.rank}. {_short(e.model_id)}" for e in shortlist]
    ax.barh(range(len(shortlist)), [e.score for e in shortlist], color="tab:blue")
    ax.set_yticks(range(len(shortlist)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"score ({shortlist.ranker})")
    ax.set_title(f"Candidates for {shortlist.task}")
    return _figure(ax)


def plot_size_vs_score(shortlist: Shortlist, *, ax: Axes | None = None, annotate: bool = True) -> Figure:
    """Parameters (log scale) against score; the Pareto front is drawn as a step line. Unknown sizes are left out."""
    ax = _axes(ax, height=4.5)
    sized = [e for e in shortlist if e.num_parameters is not None]
    ax.scatter([_size(e) for e in sized], [e.score for e in sized], color="tab:gray", label="candidates")
    front = sorted(pareto_entries(sized), key=_size)
    if front:
        ax.step(
            [_size(e) for e in front],
            [e.score for e in front],
            where="post",
            color="tab:red",
            marker="o",
            label="Pareto front",
        )
    if annotate:
        for e in front:
            ax.annotate(
                _short(e.model_id),
                (_size(e), e.score),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if sized:
        ax.set_xscale("log")
        ax.legend(loc="lower right")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"score ({shortlist.ranker})")
    missing = len(shortlist) - len(sized)
    ax.set_title(
        f"Size versus score, {shortlist.task}" + (f" ({missing} of unknown size not shown)" if missing else "")
    )
    return _figure(ax)


def _axes(ax: Axes | None, *, height: float) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(8, height), layout="constrained").add_subplot()


def _figure(ax: Axes) -> Figure:
    figure = ax.get_figure()
    assert figure is not None  # an Axes always belongs to a figure once created
    return figure  # type: ignore[return-value]


def _size(entry: ShortlistEntry) -> float:
    return float(entry.num_parameters or 0)


def _short(model_id: str) -> str:
    return model_id if len(model_id) <= MAX_LABEL_CHARS else "…" + model_id[-(MAX_LABEL_CHARS - 1) :]
