"""Wall time and peak memory of every transferability estimator on CPU, float64 and float32.

Cases (the issue's): LogME at N=5,000, D=2,048, C=100 and at N=2,000, D=768, C=10 (each also timed against a
straightforward per-class NumPy LogME, ``benchmarks/logme_numpy_reference.py``); every other estimator at N=5,000,
D=768, C=100. Inputs follow the shared estimator vectors' generator (orthogonal mixing with scales 10^(-j/(D-1)),
class means N(0, sep^2 I), sep = 0.25; source probabilities a softmax of a random projection; OTCE's source set
1,000 labelled points of 100 classes; N-LEEP with K = C components, see ``main``). Each estimator runs once on a
tiny input first (lazy initialisation), then once per dtype; LogME and its baseline alternate ``--repeat`` times
and keep their best. Every timed call starts after a short pause (``SETTLE_S``), so that no BLAS pool left spinning
by the previous call (OpenBLAS workers spin ~0.1 s; NumPy, SciPy and torch each have a pool) takes cores from it.
Peak memory: the rise of the resident-set high-water mark during the float64 call (Linux
``/proc/self/clear_refs``; without it, the process maximum ``ru_maxrss``).

    python benchmarks/estimators_bench.py --json OUT.json [--only logme,sfda] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SEED = 0
SEPARABILITY = 0.25
#: Pause before each timed call: longer than OpenBLAS's worker spin (THREAD_TIMEOUT, 2^28 cycles, ~0.1 s).
SETTLE_S = 0.3


def make_case(N: int, D: int, C: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Inputs of every estimator for one case, from the estimator vectors' recipe (see the module docstring)."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    A = Q * 10 ** (-np.arange(D) / (D - 1))
    u = rng.uniform(size=D)
    y = rng.permutation(np.arange(N) % C)
    means = rng.normal(0, SEPARABILITY, size=(C, D))
    f = (means[y] + rng.normal(size=(N, D))) @ A.T + u
    z = (f - f.mean(0)) / f.std(0) @ rng.normal(size=(D, 1000)) / np.sqrt(D) * 3
    p = np.exp(z - z.max(axis=1, keepdims=True))
    src_y = np.arange(1000) % C
    src_f = (rng.normal(0, SEPARABILITY, size=(C, D))[src_y] + rng.normal(size=(1000, D))) @ A.T + u
    return {
        "features": f,
        "labels": y,
        "source_probs": p / p.sum(axis=1, keepdims=True),
        "source_features": src_f,
        "source_labels": src_y,
    }


def _hwm_mb() -> float:
    """The resident-set high-water mark in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(name: str, arrays: dict[str, np.ndarray], options: dict[str, Any]) -> dict[str, Any]:
    """Seconds per dtype and the float64 call's peak memory rise for one estimator."""
    import torch

    from hf_spider.estimators import ESTIMATORS

    spec = ESTIMATORS[name]
    tiny = make_case(60, 8, 3)
    spec(**tiny)
    out: dict[str, Any] = {}
    for label, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        reset = _reset_peak()
        base = _rss_mb()
        time.sleep(SETTLE_S)
        start = time.perf_counter()
        try:
            value = spec(**arrays, **options, dtype=dtype)
        except ValueError as exc:  # EstimatorInputError in one precision: record it, keep the other's timing
            if label == "float64":
                raise
            out[f"error_{label}"] = str(exc)
            continue
        out[f"seconds_{label}"] = round(time.perf_counter() - start, 3)
        out[f"value_{label}"] = value
        if label == "float64":
            out["peak_mb"] = round(_hwm_mb() - base, 1) if reset else round(_hwm_mb(), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--only", help="comma-separated estimator names (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="LogME timing repeats, best kept (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)

    import scipy
    import sklearn
    import torch
    from logme_numpy_reference import logme_numpy
    from threadpoolctl import threadpool_info

    from hf_spider.estimators import ESTIMATORS

    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.only.split(",") if args.only else list(ESTIMATORS)
    results: dict[str, Any] = {
        "_meta": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "torch_threads": torch.get_num_threads(),
            # NumPy / SciPy's BLAS pools: the baseline runs in them, and so does LogME's CPU path (syrk, sytrd).
            "thread_pools": [
                {"api": i["internal_api"], "library": Path(i["filepath"]).name, "threads": i["num_threads"]}
                for i in threadpool_info()
            ],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit_learn": sklearn.__version__,
            "seed": SEED,
            "settle_seconds": SETTLE_S,
            "separability": SEPARABILITY,
        }
    }
    cases: list[tuple[str, str, tuple[int, int, int]]] = []
    if "logme" in names:
        cases += [("logme", "logme", (5000, 2048, 100)), ("logme_2000x768x10", "logme", (2000, 768, 10))]
    cases += [(n, n, (5000, 768, 100)) for n in names if n != "logme"]
    # N-LEEP's default K = max(min(C, N/5), N/10) = 500 full-covariance components in the ~300 PCA dimensions this
    # generator keeps is hours of EM on 2 cores (scikit-learn alike); the benchmark uses K = C and records it.
    options = {"nleep": {"n_components": 100}}
    data: dict[tuple[int, int, int], dict[str, np.ndarray]] = {}
    rows = []
    for key, name, shape in cases:
        arrays = data.setdefault(shape, make_case(*shape))
        try:
            measured = measure(name, arrays, options.get(name, {}))
        except ValueError as exc:  # EstimatorInputError: record why and go on with the others
            results[key] = {"case": ",".join(map(str, shape)), "error": str(exc)}
            print(f"{key:20s} failed: {exc}", flush=True)
            continue
        entry: dict[str, Any] = {"case": ",".join(map(str, shape)), **measured}
        if name in options:
            entry["options"] = options[name]
        if name == "logme":
            # Alternate ours and the baseline --repeat times and keep each one's best: load on a shared box varies.
            best = np.inf
            for _ in range(args.repeat):
                time.sleep(SETTLE_S)
                start = time.perf_counter()
                baseline = logme_numpy(arrays["features"], arrays["labels"])
                best = min(best, time.perf_counter() - start)
                if args.repeat > 1:
                    again = measure(name, arrays, {})
                    entry["seconds_float64"] = min(entry["seconds_float64"], again["seconds_float64"])
                    entry["seconds_float32"] = min(entry["seconds_float32"], again["seconds_float32"])
            entry["logme_numpy_baseline_seconds"] = round(float(best), 3)
            entry["logme_numpy_baseline_value"] = baseline
            entry["speedup_vs_numpy"] = round(entry["logme_numpy_baseline_seconds"] / entry["seconds_float64"], 2)
            entry["rel_diff_vs_numpy"] = abs(entry["value_float64"] - baseline) / abs(baseline)
        results[key] = entry
        rows.append((key, entry))
        print(
            f"{key:20s} {entry['case']:>15s} f64 {entry['seconds_float64']:8.3f}s  f32 "
            + (f"{entry['seconds_float32']:8.3f}s" if "seconds_float32" in entry else "  failed")
            + f"  peak {entry['peak_mb']:8.1f} MB"
            + (f"  numpy {entry['logme_numpy_baseline_seconds']:.3f}s" if "speedup_vs_numpy" in entry else ""),
            flush=True,
        )
    results["_meta"]["load_average_at_end"] = os.getloadavg()
    if args.json:
        from hf_spider.hub.output_paths import atomic_write

        with atomic_write(args.json) as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
