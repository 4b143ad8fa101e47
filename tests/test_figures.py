"""Every figure of the README, the CHANGELOG, docs/, the zoo README and the scorer card reads what its results file
holds (``scripts/figures.py``: a marker after each figure names the file and key)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_figures():
    spec = importlib.util.spec_from_file_location("figures", REPO / "scripts" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


figures = load_figures()


def test_every_marked_figure_reads_its_results_file() -> None:
    found = figures.figures()
    wrong = [f"{f.document}:{f.line}: {f.written} should read {f.expected}" for f in found if not f.ok]
    assert not wrong, "\n".join(wrong) + "\nrewrite them with: python scripts/figures.py --write"


@pytest.mark.parametrize(
    "document", ["README.md", "CHANGELOG.md", "benchmarks/zoo/README.md", "hf_spider/data/scorer/README.md"]
)
def test_each_document_ties_its_figures(document: str) -> None:
    assert any(f.document == document for f in figures.figures()), f"{document} has no marked figure"


def test_the_front_door_has_no_unmarked_figure() -> None:
    """The README's figures of three decimals (weighted tau and its kin) all carry a marker."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    bare = [m.group(0) for m in re.finditer(r"-?\d\.\d{3}(?!\d|<!-- )", text)]
    assert not bare, f"README figures without a results-file marker: {bare}"


def test_a_figure_edited_by_hand_is_caught(tmp_path: Path) -> None:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "demo.json").write_text(
        json.dumps({"image": {"tau": 0.71049, "share": 0.1834, "base": 0.5}, "seconds": [2516.9]})
    )
    marked = (
        "tau 0.710<!-- results/demo image.tau --> / 0.71<!-- results/demo image.tau -->, "
        "18.3 %<!-- results/demo image.share % -->, +0.210<!-- results/demo image.tau -image.base -->, "
        "2,517<!-- results/demo seconds.0 -->\n"
    )
    (tmp_path / "README.md").write_text(marked)
    assert [(f.written, f.ok) for f in figures.figures(tmp_path)] == [
        ("0.710", True),  # 0.71049 to 3 digits
        ("0.71", True),
        ("18.3", True),  # 0.1834 as a percentage
        ("+0.210", True),  # 0.71049 - 0.5
        ("2,517", True),
    ]
    (tmp_path / "README.md").write_text(marked.replace("0.710<", "0.712<").replace("2,517", "2,500"))
    assert [(f.written, f.expected) for f in figures.figures(tmp_path) if not f.ok] == [
        ("0.712", "0.710"),
        ("2,500", "2,517"),
    ]
    assert figures.write(tmp_path) == 2
    assert (tmp_path / "README.md").read_text() == marked


def test_a_marker_naming_a_missing_key_stops_the_check(tmp_path: Path) -> None:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "demo.json").write_text(json.dumps({"a": 1.0}))
    (tmp_path / "README.md").write_text("1.0<!-- results/demo b -->\n")
    with pytest.raises(SystemExit, match="no value at results/demo b"):
        figures.figures(tmp_path)
