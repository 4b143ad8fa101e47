"""Numbers a model card writes in prose: timm's "Model Stats" list and "Model Comparison" table, dataset lines.

timm cards (every ``timm/*`` repo) carry no ``model-index``; what they measure sits in Markdown::

    - **Model Stats:**
      - Params (M): 25.6
      - GMACs: 4.1
      - Image size: train = 224 x 224, test = 288 x 288
    - **Dataset:** ImageNet-1k
    - **Pretrain Dataset:** ImageNet-21k

and a comparison table whose own row (``|[resnet50.a1_in1k](...)|288|81.22|...``) gives the top-1. Only the card's
opening part is read (:data:`MAX_CHARS`), line by line with anchored patterns, so a huge or hostile card costs a
bounded time.
"""

from __future__ import annotations

import re
from typing import Any

from .pretraining import sources_of

#: Characters of card prose that are parsed (a timm card puts its stats in the first 3,000).
MAX_CHARS = 20_000
_STAT = re.compile(r"^\s*[-*]?\s*(?:\*\*)?\s*([A-Za-z][A-Za-z ()]{1,30}?)\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.{1,200})$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SIDE = re.compile(r"(\d{2,4})\s*x\s*\d{2,4}")


def card_stats(card_text: str | None, repo_id: str | None = None) -> dict[str, Any]:
    """``num_parameters``, ``gmacs``, ``input_size``, ``imagenet_top1`` and ``pretraining`` written in the prose of
    a card (timm's layout); only what is written is returned.

    Example:
        >>> card_stats("- **Model Stats:**\\n  - Params (M): 25.6\\n  - Image size: train = 224 x 224")
        {'num_parameters': 25600000, 'input_size': 224}
    """
    if not card_text:
        return {}
    out: dict[str, Any] = {}
    datasets: list[str] = []
    for line in card_text[:MAX_CHARS].splitlines():
        if len(line) > 400:
            continue
        if line.lstrip().startswith("|"):
            top1 = _own_row_top1(line, repo_id)
            if top1 is not None and "imagenet_top1" not in out:
                out["imagenet_top1"] = top1
            continue
        match = _STAT.match(line)
        if not match:
            continue
        key, value = match.group(1).strip().lower(), match.group(2)
        number = _NUMBER.search(value)
        if key == "params (m)" and number:
            out.setdefault("num_parameters", round(float(number.group()) * 1e6))
        elif key == "gmacs" and number:
            out.setdefault("gmacs", float(number.group()))
        elif key == "image size" and (side := _SIDE.search(value)):
            out.setdefault("input_size", int(side.group(1)))
        elif key in ("dataset", "pretrain dataset"):
            datasets.append(value.strip(" *"))
    if datasets and (sources := sources_of(reversed(datasets))):  # the pre-training set was used first
        out["pretraining"] = sources
    return out


def _own_row_top1(line: str, repo_id: str | None) -> float | None:
    """Top-1 of the comparison-table row that names this repo's model (``model|img_size|top1|...``)."""
    if not repo_id or "/" not in repo_id:
        return None
    name = repo_id.split("/", 1)[1]
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 3 or not (cells[0] == name or cells[0].startswith(f"[{name}]")):
        return None
    try:
        value = float(cells[2])
    except ValueError:
        return None
    return value if 10.0 <= value <= 95.0 else None
