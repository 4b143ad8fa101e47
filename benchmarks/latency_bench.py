"""Wall time of ``hf-spider rank --labels ... --top-k 10`` as a user sees it: warm, first use, and the import.

* ``warm_s``: median of 5 runs (after one unmeasured run) on the default pool and on pools of 10,000 and 100,000
  candidates synthesised from it (every record repeated under new repo ids, ``synthetic-<k>/<k>-<name>``: new ids, so
  no record is a copy of another and none reads the default pool's precomputed tokens; the first run builds their
  token cache);
* ``first_use_s``: the first run on the default pool, with an empty ``HF_SPIDER_CACHE`` (the label names are
  encoded, which loads the text encoder and torch);
* ``import_s``: median of 5 ``python -c "import hf_spider"``;
* ``pool_size``: candidates of the default pool with a modality and a parameter count.

Each run is a fresh process (``python -m hf_spider``), as a user's command is. The machine may be shared: the
extended results file records the load average before and after. The contract output (``--json``) holds exactly the
keys above; ``--details`` writes the extended record (hardware, versions, each run's times).

    python benchmarks/latency_bench.py --json OUT.json --details benchmarks/results/latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from hf_spider.hub.index import write_index
from hf_spider.hub.output_paths import atomic_write
from hf_spider.hub.pool import load_default_pool

REPO = Path(__file__).resolve().parents[1]
LABELS = "healthy leaf,rust,scab,mildew"
SIZES = (10_000, 100_000)
RUNS = 5


def rank_seconds(candidates: str | None, env: dict[str, str], labels: str = LABELS) -> float:
    """Wall time of one ``hf-spider rank`` process (which must succeed)."""
    command = [sys.executable, "-m", "hf_spider", "rank", "--labels", labels, "--modality", "image", "--top-k", "10"]
    if candidates is not None:
        command += ["--candidates", candidates]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"hf-spider rank failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def warm(candidates: str | None, env: dict[str, str]) -> list[float]:
    rank_seconds(candidates, env)  # fills the caches (label embeddings, a synthesised pool's tokens)
    return [rank_seconds(candidates, env) for _ in range(RUNS)]


def synthesise(size: int, folder: Path) -> Path:
    """An index of ``size`` records repeated from the default pool under new repo ids."""
    pool = load_default_pool()
    records = [
        replace(pool[k % len(pool)], repo_id=f"synthetic-{k}/{k:06d}-{pool[k % len(pool)].repo_id.split('/')[-1]}")
        for k in range(size)
    ]
    return write_index(records, folder / f"pool_{size}.parquet")


def import_seconds(env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import hf_spider"], env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def _commit() -> str | None:
    """The git commit benchmarked, ``None`` outside a checkout."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="the contract output (warm_s, first_use_s, ...)")
    parser.add_argument("--details", type=Path, help="also write each run's times, load average and versions here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    pool = load_default_pool()
    sized = [r for r in pool if r.num_parameters is not None]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "HF_SPIDER_CACHE": str(folder / "cache"), "PYTHONPATH": str(REPO)}
        first_use = rank_seconds(None, env)  # the cache is empty: the labels are encoded, torch is imported
        runs = {"default": warm(None, env)}
        for size in SIZES:
            runs[str(size)] = warm(str(synthesise(size, folder)), env)
        imports = import_seconds(env)
    result = {
        "warm_s": {name: round(statistics.median(times), 3) for name, times in runs.items()},
        "first_use_s": round(first_use, 3),
        "import_s": round(statistics.median(imports), 3),
        "pool_size": {m: sum(r.modality == m for r in sized) for m in ("image", "text")},
    }
    with atomic_write(args.json) as f:
        json.dump(result, f, indent=2)
    if args.details:
        details = {
            **result,
            "runs_s": {name: [round(t, 3) for t in times] for name, times in runs.items()},
            "import_runs_s": [round(t, 3) for t in imports],
            "labels": LABELS,
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "commit": _commit(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        }
        with atomic_write(args.details) as f:
            json.dump(details, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
