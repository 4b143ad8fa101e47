"""What ``hf-spider evaluate`` shows: the per-target table, the means, one recommendation line per modality, a plot.

The figures come from :func:`hf_spider.evaluation.evaluate.evaluate_records`; this module only reads them. Figures are
built with :class:`matplotlib.figure.Figure` (no ``pyplot`` state), as in :mod:`hf_spider.outputs.plots`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..rankers import PRIORS
from .metrics import MEAN_ROWS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Short names of the protocols (plot panels, the recommendation line).
PROTOCOL_NAMES = {"loto": "leave one target out", "cold_start": "cold start", "mixed_pool": "mixed pool"}
#: How each protocol is described above its table.
PROTOCOL_TITLES = {
    "loto": "leave one target out (every model seen on other targets)",
    "cold_start": "cold start (a quarter of the models never seen, ranked among themselves)",
    "mixed_pool": "mixed pool (a quarter never seen, ranked with the seen ones in one list)",
}
#: The protocol a recommendation rests on, most realistic first: a crawl of the Hub mixes seen and unseen models.
RECOMMENDATION_ORDER = ("mixed_pool", "loto", "cold_start")
#: Mean columns shown as "weighted / plain", with their titles.
SHOWN_METRICS = {"weighted_tau": "weighted tau", "top1": "top-1", "rel1": "rel@1", "rel5": "rel@5"}
_WEIGHTED, _PLAIN = MEAN_ROWS


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating rankers on fine-tuning records.

    Args:
        table: indexed by ``(modality, protocol, ranker, target)``; ``target`` also takes the values
            ``"weighted mean"`` and ``"plain mean"``. Columns: the metrics of the ``model_ranking`` module
            (``weighted_tau``, ``kendall``, ``spearman``, ``pearson``, ``top1``, ``rel1``, ``regret1``, ``top5``,
            ``rel5``, ``regret5``), the mixed pool's held-out placement (``heldout_*``, NaN elsewhere), the target's
            ``weight`` and ``n_models``.
        notes: what was repaired or assumed while reading the records, one line each.
        source: the records' name.
        protocols: the protocols run, in table order.
    """

    table: pd.DataFrame
    notes: tuple[str, ...] = ()
    source: str = "records"
    protocols: tuple[str, ...] = ()

    @property
    def modalities(self) -> list[str]:
        return list(dict.fromkeys(self.table.index.get_level_values("modality")))

    def means(self, modality: str, protocol: str, metric: str = "weighted_tau", kind: str = _WEIGHTED) -> pd.Series:
        """``metric``'s weighted (or plain) mean per ranker, in run order."""
        part = self.table.xs((modality, protocol), level=("modality", "protocol"))
        return part.xs(kind, level="target")[metric]

    def recommendations(self) -> list[str]:
        """One line per modality: the ranker to use, and by how much it beats the priors, on the most realistic
        protocol run (:data:`RECOMMENDATION_ORDER`)."""
        lines = []
        for modality in self.modalities:
            protocol = next(p for p in RECOMMENDATION_ORDER if p in self.protocols)
            tau = self.means(modality, protocol)
            rel1 = self.means(modality, protocol, "rel1")
            targets = self._targets(modality, protocol)
            best = str(tau.idxmax())
            where = f"{PROTOCOL_NAMES[protocol]}, weighted mean over {len(targets)} target(s)"
            priors = tau[[p for p in PRIORS if p in tau.index]]
            if best in PRIORS:
                lines.append(
                    f"{modality}: no learned ranker beats the priors on these records; use {best} "
                    f"(weighted tau {tau[best]:.3f}, {where}) and re-rank its top models with forward passes"
                )
                continue
            margins = ", ".join(f"{tau[best] - v:+.3f} over {p} ({v:.3f})" for p, v in priors.sort_values().items())
            lines.append(
                f"{modality}: use --ranker {best}: weighted tau {tau[best]:.3f} ({where}), its top pick reaches "
                f"{100 * rel1[best]:.1f} % of the best model's accuracy; {margins}"
            )
        return lines

    def to_text(self) -> str:
        """The tables (per-target weighted tau, then the means) for each modality and protocol, and the verdict."""
        blocks = [f"# hf-spider evaluate: {self.source}"]
        for modality in self.modalities:
            for protocol in self.protocols:
                blocks.append(f"\n## {modality}, {PROTOCOL_TITLES[protocol]}: weighted tau per target\n")
                blocks.append(self._per_target(modality, protocol).round(3).to_string())
                blocks.append("\nmeans, weighted / plain:\n")
                blocks.append(self._means_frame(modality, protocol).to_string())
        blocks.append("")
        blocks.extend(self.recommendations())
        return "\n".join(blocks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: source, notes, recommendations and one dict per table row (NaN as ``None``)."""
        rows = self.table.reset_index().to_dict(orient="records")
        return {
            "source": self.source,
            "protocols": list(self.protocols),
            "notes": list(self.notes),
            "recommendations": self.recommendations(),
            "rows": [{k: _plain(v) for k, v in row.items()} for row in rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def plot(self) -> Figure:
        """Per-target weighted tau as bars, one bar per ranker, one panel per modality and protocol."""
        from matplotlib.figure import Figure

        panels = [(m, p) for m in self.modalities for p in self.protocols]
        width = max(6.0, 1.1 * max(len(self._targets(m, p)) + 1 for m, p in panels) + 2.5)
        figure = Figure(figsize=(width, 2.8 * len(panels)), layout="constrained")
        axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
        for ax, (modality, protocol) in zip(axes, panels, strict=True):
            tau = self._per_target(modality, protocol).drop(index=_PLAIN)
            rankers = list(tau.columns)
            step = 0.8 / len(rankers)
            for i, ranker in enumerate(rankers):
                offsets = [x - 0.4 + step * (i + 0.5) for x in range(len(tau))]
                ax.bar(offsets, tau[ranker].fillna(0.0), width=step, label=ranker, color=f"C{i}")
            ax.set_xticks(range(len(tau)), [_short(t) for t in tau.index], rotation=20, ha="right", fontsize=8)
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.set_ylabel("weighted tau")
            ax.set_title(f"{modality}, {PROTOCOL_NAMES[protocol]}", fontsize=10)
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right upper", fontsize=8)
        return figure

    def _per_target(self, modality: str, protocol: str) -> pd.DataFrame:
        """Weighted tau, targets (in run order, then the two means) x rankers (in run order)."""
        part = self.table.xs((modality, protocol), level=("modality", "protocol")).weighted_tau
        rankers = list(dict.fromkeys(part.index.get_level_values("ranker")))
        return part.unstack("ranker").loc[[*self._targets(modality, protocol), *MEAN_ROWS], rankers]

    def _targets(self, modality: str, protocol: str) -> list[str]:
        part = self.table.xs((modality, protocol), level=("modality", "protocol"))
        return [t for t in dict.fromkeys(part.index.get_level_values("target")) if t not in (_WEIGHTED, _PLAIN)]

    def _means_frame(self, modality: str, protocol: str) -> pd.DataFrame:
        """Rankers x metrics, each cell ``weighted / plain``; the mixed pool adds where the unseen models land."""
        out = {}
        for metric, title in SHOWN_METRICS.items():
            weighted = self.means(modality, protocol, metric, _WEIGHTED)
            plain = self.means(modality, protocol, metric, _PLAIN)
            out[title] = [f"{w:.3f} / {p:.3f}" for w, p in zip(weighted, plain, strict=True)]
        if protocol == "mixed_pool":
            share = self.means(modality, protocol, "heldout_share")
            top5 = self.means(modality, protocol, "heldout_top5_share")
            out["unseen in top 5 (of list)"] = [f"{t:.2f} ({s:.2f})" for t, s in zip(top5, share, strict=True)]
            out["unseen bias"] = [f"{b:+.3f}" for b in self.means(modality, protocol, "heldout_bias")]
        return pd.DataFrame(out, index=self.means(modality, protocol).index)


def _short(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value
