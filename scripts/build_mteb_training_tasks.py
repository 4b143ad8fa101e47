"""Write ``hf_spider/data/mteb/training_tasks.csv``: the MTEB tasks each shipped MTEB model declares it trained on.

Source: ``ModelMeta.training_datasets`` of the ``mteb`` package (the version the other MTEB metadata was read from),
offline. A model with no declaration (``None``: MTEB does not know) gets no row; so does one that declares none.

    pip install mteb==2.26.24   # not a dependency of hf-spider: only this script needs it
    python scripts/build_mteb_training_tasks.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import mteb
import pandas as pd

FOLDER = Path(__file__).resolve().parent.parent / "hf_spider" / "data" / "mteb"


def main() -> None:
    rows = set()
    for model in pd.read_csv(FOLDER / "models.csv").model:
        declared = mteb.get_model_meta(model).training_datasets or ()
        rows |= {(model, str(task)) for task in declared}
    with open(FOLDER / "training_tasks.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["model", "task"])
        writer.writerows(sorted(rows))
    print(f"{len(rows)} (model, task) pairs of {len({m for m, _ in rows})} models (mteb {mteb.__version__})")


if __name__ == "__main__":
    main()
