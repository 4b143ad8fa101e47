"""Draw the shortlist plots shown in the README (``docs/img/``), from real rankings of the bundled pool, offline.

    python scripts/plot_readme_examples.py

ranks the bundled image models for a three-class task known by its label names (``cat, dog, bird``) with the
default ranker, exactly as ``hf-spider rank --labels "cat,dog,bird" --modality image --top-k 10`` does, and saves
``plot_scores`` and ``plot_size_vs_score`` of the shortlist as small PNGs. Deterministic for a given scorer and
matplotlib version.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hf_spider

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: docs/img)")
    parser.add_argument("--dpi", type=int, default=80, help="resolution; 80 keeps each PNG small")
    args = parser.parse_args()
    selector = hf_spider.pipeline("model-selection")
    shortlist = selector({"labels": ["cat", "dog", "bird"], "modality": "image", "name": "cat, dog, bird"}, top_k=10)
    print(shortlist)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, figure in (("scores", shortlist.plot_scores()), ("size_vs_score", shortlist.plot_size_vs_score())):
        path = args.out / f"{name}.png"
        figure.savefig(path, dpi=args.dpi, metadata={"Software": None})
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
