"""A task with many classes, ranked twice from the command line: the second run reads its label-name embeddings from
the cache instead of encoding them again.

    python benchmarks/label_cache_bench.py --json benchmarks/results/label_cache.json [--labels 5000]

Writes a CSV of ``2 x labels`` rows (two texts per class), then runs ``hf-spider rank --dataset <csv> --top-k 3``
twice in fresh processes, offline, with an empty ``HF_SPIDER_CACHE``: the first encodes every label name with the
default text encoder, the second finds them cached. Prints a table and writes the wall times, the hardware and the
versions as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_rank(csv: Path, cache: Path) -> float:
    """Wall seconds of one ``hf-spider rank`` in a fresh process (imports included, as a user waits for them)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_SPIDER_CACHE": str(cache), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    command = [sys.executable, "-m", "hf_spider", "rank", "--dataset", str(csv), "--top-k", "3", "--format", "json"]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=5000, help="number of classes (default: 5000)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    import pandas as pd

    import hf_spider

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "many_classes.csv"
        rows = 2 * args.labels
        pd.DataFrame(
            {
                "text": [f"sample text {i}" for i in range(rows)],
                "label": [f"class name {i % args.labels}" for i in range(rows)],
            }
        ).to_csv(csv, index=False)
        cache = Path(tmp) / "cache"
        first = run_rank(csv, cache)
        second = run_rank(csv, cache)
    print("| labels | first run (s) | re-run (s) | speed-up |\n|---:|---:|---:|---:|")
    print(f"| {args.labels:,} | {first:.1f} | {second:.1f} | {first / second:.1f}x |")
    if args.json:
        result = {
            "labels": args.labels,
            "rows": rows,
            "first_run_s": round(first, 2),
            "rerun_s": round(second, 2),
            "speedup": round(first / second, 2),
            "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor()},
            "versions": {"python": platform.python_version(), "hf_spider": hf_spider.__version__},
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
