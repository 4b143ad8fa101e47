"""ImageNet facts of a candidate: the measured numbers behind every timm repo, joined at ranking time.

ImageNet top-1 predicts transfer to other image tasks (Kornblith et al., "Do Better ImageNet Models Transfer
Better?", CVPR 2019), strongest for natural images; accuracy on ImageNet-R and ImageNet-Sketch says how features hold
up under domain shift. timm publishes these for its ~1,300 pre-trained models, and they are shipped here
(``data/timm_facts.csv``, rebuilt by ``scripts/build_timm_facts.py``). A candidate gets them, in order of trust:

1. ``exact``: its repo is ``timm/<architecture>.<tag>`` (or a ``timm_wrapper`` / timm config naming both);
2. ``card``: its card reports an ImageNet-1k top-1 (``model-index`` or timm's prose table);
3. ``architecture``: a timm architecture, or a transformers port (``model_type`` ``resnet``, ``convnext``, ...) whose
   family and parameter count match timm models: the median facts of those models (the port's exact weights are
   unknown, its architecture is not). Lineage (:mod:`hf_spider.tokens.lineage`) passes an ancestor's facts on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from statistics import median

from ..hub.layouts import timm_family
from ..hub.records import ModelRecord

#: How a candidate's facts were found, most trusted first (see the module docstring).
FACT_SOURCES = ("exact", "card", "lineage", "architecture")
#: A transformers port matches a timm model when their parameter counts differ by less than this share, or when the
#: port is smaller by less than :data:`_HEAD_SHARE` and has its own head (a fine-tune drops ImageNet's 1000 outputs).
_PARAM_TOLERANCE = 0.03
_HEAD_SHARE = 0.12


@dataclass(frozen=True)
class ImageNetFacts:
    """Measured ImageNet numbers of one model (percentages; ``None`` where not measured).

    Args:
        top1 / top5: ImageNet-1k accuracy.
        imagenet_r_top1 / sketch_top1: accuracy on ImageNet-R and ImageNet-Sketch (domain shift).
        img_size: the resolution the model was trained at.
        pretraining: the pre-training sources (``hf_spider.hub.pretraining``).
        gmacs: multiply-accumulates per image, in billions.
        num_parameters: parameter count of the measured model(s); the size of a candidate whose own files do not
            state it (a config without a card, a port), since the facts describe the very weights it holds.
        source: how the facts were found, one of :data:`FACT_SOURCES`.
        matched: the timm model(s) or ancestor the facts come from, for the shortlist's explanation.
    """

    top1: float
    top5: float | None = None
    imagenet_r_top1: float | None = None
    sketch_top1: float | None = None
    img_size: int | None = None
    pretraining: tuple[str, ...] = ()
    gmacs: float | None = None
    num_parameters: int | None = None
    source: str = "exact"
    matched: str = ""


@dataclass(frozen=True)
class _Row:
    architecture: str
    tag: str
    param_count: int
    facts: ImageNetFacts


@lru_cache(maxsize=1)
def timm_facts() -> dict[str, _Row]:
    """The shipped facts table, by repo id (``timm/<architecture>.<tag>``)."""
    path = Path(str(resources.files("hf_spider") / "data" / "timm_facts.csv"))
    rows = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):

            def number(key: str, row: dict[str, str] = row) -> float | None:
                return float(row[key]) if row[key] else None

            facts = ImageNetFacts(
                top1=float(row["top1"]),
                top5=number("top5"),
                imagenet_r_top1=number("imagenet_r_top1"),
                sketch_top1=number("sketch_top1"),
                img_size=int(row["img_size"]),
                pretraining=tuple(s for s in row["pretraining"].split(";") if s),
                gmacs=number("gmacs"),
                num_parameters=int(row["param_count"]),
                matched=row["repo_id"],
            )
            rows[row["repo_id"]] = _Row(row["architecture"], row["tag"], int(row["param_count"]), facts)
    return rows


@lru_cache(maxsize=1)
def _by_family() -> dict[str, list[_Row]]:
    families: dict[str, list[_Row]] = {}
    for row in timm_facts().values():
        families.setdefault(timm_family(row.architecture), []).append(row)
    return families


def facts_for(record: ModelRecord) -> ImageNetFacts | None:
    """The most trusted ImageNet facts of ``record`` (see the module docstring), ``None`` when none is known."""
    table = timm_facts()
    architecture = (record.architectures or ("",))[0]
    for key in (record.repo_id, f"timm/{architecture}.{record.pretrained_tag}"):
        if key in table:
            return table[key].facts
    if record.imagenet_top1 is not None:
        return ImageNetFacts(
            top1=record.imagenet_top1,
            img_size=record.input_size,
            pretraining=record.pretraining or (),
            gmacs=record.gmacs,
            num_parameters=record.num_parameters,
            source="card",
            matched=record.repo_id,
        )
    matches = _architecture_matches(record, architecture)
    if not matches:
        return None
    return ImageNetFacts(
        top1=median(r.facts.top1 for r in matches),
        top5=_median(r.facts.top5 for r in matches),
        imagenet_r_top1=_median(r.facts.imagenet_r_top1 for r in matches),
        sketch_top1=_median(r.facts.sketch_top1 for r in matches),
        img_size=record.input_size or matches[0].facts.img_size,
        pretraining=record.pretraining or matches[0].facts.pretraining,
        gmacs=_median(r.facts.gmacs for r in matches),
        num_parameters=record.num_parameters or int(median(r.param_count for r in matches)),
        source="architecture",
        matched=", ".join(sorted({r.architecture for r in matches})),
    )


def inherited(facts: ImageNetFacts, ancestor: str) -> ImageNetFacts:
    """``facts`` of an ancestor, as a descendant reads them (``source="lineage"``)."""
    return replace(facts, source="lineage", matched=ancestor)


def _architecture_matches(record: ModelRecord, architecture: str) -> list[_Row]:
    """timm models of the record's architecture: by name for a timm architecture, else by family and size."""
    if record.library_name == "timm" and architecture:
        rows = [r for r in timm_facts().values() if r.architecture == architecture]
    elif record.model_type and record.num_parameters:
        candidates = _by_family().get(timm_family(record.model_type.replace("-", "_")), [])
        rows = [r for r in candidates if _same_size(record, r.param_count)]
        if record.input_size:
            rows = [r for r in rows if r.facts.img_size == record.input_size] or rows
    else:
        return []
    if record.pretraining:  # prefer the weights pre-trained on what the record says
        rows = [r for r in rows if set(record.pretraining) & set(r.facts.pretraining)] or rows
    return rows


def _same_size(record: ModelRecord, timm_parameters: int) -> bool:
    count = record.num_parameters or 0
    gap = (timm_parameters - count) / timm_parameters
    own_head = record.num_labels is not None and record.num_labels != 1000
    return abs(gap) < _PARAM_TOLERANCE or (own_head and 0 < gap < _HEAD_SHARE)


def _median(values: object) -> float | None:
    known = [v for v in values if v is not None]  # type: ignore[attr-defined]
    return median(known) if known else None
