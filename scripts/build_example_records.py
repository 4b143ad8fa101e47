"""Build ``hf_spider/data/example_records.csv``, the small team history of the README's ``hf-spider evaluate`` example.

    python scripts/build_example_records.py

Real measured accuracies, taken from the shipped TransferGraph records (``finetune_records.csv``): the first four
published image targets, and 12 image models recorded on all four, drawn at random with a fixed seed: one from each
architecture family (``model_type``) first, so the example is not all ViTs, then the rest from the remaining models.
Nothing is chosen by how well any ranker does on them. Deterministic: the same inputs give a byte-identical file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hf_spider.finetune_records import EXAMPLE_RECORDS, PUBLISHED_TARGETS, load_bundled_records
from hf_spider.hub.index import atomic_write, load_bundled_index

DATA = Path(__file__).resolve().parents[1] / "hf_spider" / "data"
TARGETS = PUBLISHED_TARGETS["image"][:4]
MODELS = 12
SEED = 0


def example_records() -> pd.DataFrame:
    accuracy = load_bundled_records().accuracy
    accuracy = accuracy[accuracy.target.isin(TARGETS)]
    on_all = accuracy.groupby("model").target.nunique()
    candidates = sorted(on_all[on_all == len(TARGETS)].index)
    family = {m.repo_id: m.model_type or "unknown" for m in load_bundled_index()}
    rng = np.random.default_rng(SEED)
    chosen = []
    for name in sorted({family[m] for m in candidates}):
        members = [m for m in candidates if family[m] == name]
        chosen.append(members[int(rng.integers(len(members)))])
    rest = [m for m in candidates if m not in chosen]
    chosen += [rest[i] for i in rng.choice(len(rest), size=MODELS - len(chosen), replace=False)]
    rows = accuracy[accuracy.model.isin(chosen)]
    return rows.sort_values(["target", "model"])[["model", "target", "modality", "accuracy"]]


def main() -> None:
    path = DATA / EXAMPLE_RECORDS
    with atomic_write(path) as f:
        example_records().to_csv(f, index=False, lineterminator="\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
