"""Copy the reference data the test suite needs from ``shared/data`` into ``tests/data`` (a fresh clone tests alone).

    python scripts/build_test_data.py --shared ../shared

writes
- ``tests/data/estimator_vectors/``: the published estimator test vectors (``*.npz``, ``cases.json``,
  ``expected.json``), copied byte for byte;
- ``tests/data/transfergraph/{image,sequence}_classification/``: the columns of the TransferGraph records that
  :func:`hf_spider.finetune_records.load_transfergraph` reads (``records.csv``: model, target, accuracy, PEFT method;
  ``transferability_score_records.csv``: the recorded LogME and regularised H-score), every row kept.

Each folder's ``README.md`` (written by hand) states where the data comes from. Deterministic: the same inputs give
byte-identical files, and the loader reads the same records from the subset as from the full folder (checked here).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from hf_spider.finetune_records import TRANSFERGRAPH_FOLDERS, load_transfergraph

TESTS_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
#: Columns of the TransferGraph CSVs that ``load_transfergraph`` reads.
RECORD_COLUMNS = ("model", "finetuned_dataset", "eval_accuracy", "peft_method")
SCORE_COLUMNS = ("model", "target_dataset", "metric", "score")


def copy_estimator_vectors(shared: Path, out: Path) -> None:
    source = shared / "data" / "estimator_vectors"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*")):
        if path.suffix in (".npz", ".json"):
            shutil.copyfile(path, out / path.name)


def write_transfergraph_subset(shared: Path, out: Path) -> None:
    source = shared / "data" / "transfergraph"
    for folder in TRANSFERGRAPH_FOLDERS.values():
        (out / folder).mkdir(parents=True, exist_ok=True)
        runs = pd.read_csv(source / folder / "records.csv")
        runs[[c for c in RECORD_COLUMNS if c in runs]].to_csv(out / folder / "records.csv", index=False)
        scores = pd.read_csv(source / folder / "transferability_score_records.csv")
        scores[list(SCORE_COLUMNS)].to_csv(out / folder / "transferability_score_records.csv", index=False)
    full, subset = load_transfergraph(source), load_transfergraph(out)
    pd.testing.assert_frame_equal(full.accuracy, subset.accuracy)
    pd.testing.assert_frame_equal(full.estimator_scores, subset.estimator_scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="the shared folder (holds data/)")
    args = parser.parse_args()
    copy_estimator_vectors(args.shared, TESTS_DATA / "estimator_vectors")
    write_transfergraph_subset(args.shared, TESTS_DATA / "transfergraph")
    print(f"wrote {TESTS_DATA}")


if __name__ == "__main__":
    main()
