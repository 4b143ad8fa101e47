"""Matplotlib views of a shortlist: a bar chart of scores and a size-versus-score scatter with its Pareto front.

Both plot what the table shows (:meth:`Shortlist.display_value`): the expected percentile (see the entries) when
the ranker gives one, otherwise the raw score. The bar chart's axis spans the listed values only (a 0-100 axis makes
88 and 100 look alike), its bars start just below the lowest one so that the best model has the longest bar (raw
scores may all be negative), each bar carries its value, and the axis label says so. Figures are built with
:class:`matplotlib.figure.Figure` rather than ``pyplot``: no global state, no GUI backend, safe in the Space's worker
threads, and the caller decides whether to show, save or hand the figure to Gradio.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from .pareto import pareto_entries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .shortlist import Shortlist, ShortlistEntry

#: Longest model id shown in full on an axis; a longer one keeps its owner and both ends of its name.
MAX_LABEL_CHARS = 40
#: Longest owner kept in a shortened id.
MAX_OWNER_CHARS = 16
#: Room left of the lowest and right of the highest bar, as a fraction of the listed values' range.
BAR_MARGIN = 0.15
#: A bar shorter than this fraction of the axis gets its value printed after it rather than inside.
MIN_LABELLED_BAR = 0.06
#: The size axis spans at least this factor, so that bunched sizes still get two or more readable ticks.
MIN_SIZE_SPAN = 10.0


def plot_scores(shortlist: Shortlist, *, ax: Axes | None = None) -> Figure:
    """Horizontal bars, best at the top; a longer bar is a better model. Returns the figure (a new one unless
    ``ax`` is given)."""
    ax = _axes(ax, height=max(2.5, 0.35 * len(shortlist) + 1.4))
    entries = list(shortlist)
    values = [shortlist.display_value(e) for e in entries]
    known = [v for v in values if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    margin = BAR_MARGIN * (high - low) or BAR_MARGIN * abs(high) or 1.0
    base, top = low - margin, high + margin
    if shortlist.shows_percentile:  # a percentile lives in [0, 100]
        base, top = max(base, 0.0), min(top, 100.0)
    widths = [0.0 if v is None else v - base for v in values]
    ax.barh(range(len(entries)), widths, left=base, color="tab:blue")
    for i, (entry, value) in enumerate(zip(entries, values, strict=True)):
        if entry.error:
            ax.text(base, i, "  failed", va="center", fontsize=8, color="tab:red")
        elif value is None:
            ax.text(base, i, "  no estimate", va="center", fontsize=8, color="tab:gray")
        else:  # inside the bar's end, or just after a bar too short to hold it (a percentile near 0)
            shown = f"{value:.0f}" if shortlist.shows_percentile else f"{value:.3g}"
            inside = value - base > MIN_LABELLED_BAR * (top - base)
            ax.text(
                value,
                i,
                f"{shown} " if inside else f" {shown}",
                va="center",
                ha="right" if inside else "left",
                fontsize=8,
                color="white" if inside else "black",
                fontweight="bold",
            )
    ax.set_yticks(range(len(entries)), [f"{e.rank}. {short_id(e.model_id)}" for e in entries])
    ax.set_xlim(base, top)
    ax.invert_yaxis()
    label = shortlist.value_label + "; the axis spans the listed values only"
    ax.set_xlabel(textwrap.fill(label, 70))
    ax.set_title(f"Candidates for {shortlist.task}")
    return _figure(ax)


def plot_size_vs_score(shortlist: Shortlist, *, ax: Axes | None = None, annotate: bool = True) -> Figure:
    """Parameters (log scale) against the displayed value; the Pareto front is a step line. Unknown sizes are left
    out (the title counts them)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax = _axes(ax, height=4.5)
    sized = [e for e in shortlist if e.num_parameters is not None and shortlist.display_value(e) is not None]

    def y(entry: ShortlistEntry) -> float:
        value = shortlist.display_value(entry)
        assert value is not None  # sized entries have one
        return value

    ax.scatter([_size(e) for e in sized], [y(e) for e in sized], color="tab:gray", label="candidates", zorder=2)
    front = sorted(pareto_entries(sized), key=_size)
    if front:
        ax.step(
            [_size(e) for e in front],
            [y(e) for e in front],
            where="post",
            color="tab:red",
            marker="o",
            label="Pareto front",
            zorder=3,
        )
    if sized:
        ax.set_xscale("log")
        low, high = _size_range([_size(e) for e in sized])
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: human_count(round(value)).replace(".0", "")))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ys = [y(e) for e in sized]
        pad = 0.08 * (max(ys) - min(ys)) or 1.0
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.legend(loc="lower right", fontsize=8)
        if annotate:
            _annotate(ax, front, y, (low, high), (min(ys) - pad, max(ys) + pad))
    ax.set_xlabel("parameters")
    ax.set_ylabel("expected percentile" if shortlist.shows_percentile else f"raw score ({shortlist.ranker})")
    missing = len(shortlist) - len(sized)
    ax.set_title(f"Size versus {'expected percentile' if shortlist.shows_percentile else 'score'}, {shortlist.task}")
    if missing:
        ax.text(0.01, 0.99, f"{missing} of unknown size not shown", transform=ax.transAxes, va="top", fontsize=8)
    return _figure(ax)


def short_id(model_id: str, limit: int = MAX_LABEL_CHARS) -> str:
    """``model_id`` in at most ``limit`` characters, keeping the owner and both ends of the name
    (``"google/vit-base-…-in21k"``), so neither who made it nor which variant it is gets lost."""
    if len(model_id) <= limit:
        return model_id
    owner, slash, name = model_id.rpartition("/")
    if len(owner) > MAX_OWNER_CHARS:
        owner = owner[: MAX_OWNER_CHARS - 1] + "…"
    room = max(limit - len(owner) - len(slash) - 1, 2)
    head = (room + 1) // 2
    return f"{owner}{slash}{name[:head]}…{name[len(name) - (room - head) :]}"


def _annotate(
    ax: Axes,
    entries: list[ShortlistEntry],
    y: Callable[[ShortlistEntry], float],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
) -> None:
    """Label the front's points, each on the side that keeps it inside the frame."""
    for entry in entries:
        x_value, y_value = _size(entry), y(entry)
        x_frac = (math.log(x_value) - math.log(xlim[0])) / (math.log(xlim[1]) - math.log(xlim[0]))
        y_frac = (y_value - ylim[0]) / ((ylim[1] - ylim[0]) or 1.0)
        right = x_frac > 0.55
        above = y_frac < 0.85
        ax.annotate(
            short_id(entry.model_id, 36),
            (x_value, y_value),
            fontsize=7,
            xytext=(-4 if right else 4, 4 if above else -4),
            textcoords="offset points",
            ha="right" if right else "left",
            va="bottom" if above else "top",
            annotation_clip=True,
        )


def _size_range(sizes: list[float]) -> tuple[float, float]:
    """Log-axis limits around ``sizes`` spanning at least :data:`MIN_SIZE_SPAN`, centred on them."""
    low, high = min(sizes) / 1.3, max(sizes) * 1.3
    if high / low < MIN_SIZE_SPAN:
        centre = math.sqrt(low * high)
        half = math.sqrt(MIN_SIZE_SPAN)
        low, high = centre / half, centre * half
    return low, high


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


def human_count(n: int) -> str:
    """``229799953`` -> ``"229.8M"``: parameter counts as people read them."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
