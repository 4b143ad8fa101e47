"""H-score and regularised H-score on features wider than the samples are many: hf-spider against the textbook formula.

A re-ranking reads a few samples per class (successive halving's first round: 2), while an LLM-sized candidate has
4,096 features. The textbook formulas invert a [D, D] covariance; hf-spider works in the sample space (an [N, N]
Gram matrix; Woodbury for the Ledoit-Wolf inverse), since the centred features have rank at most N - 1. Both are
timed here, float64, best of ``--repeat``, on the same inputs, and their values compared:

* H-score: ``trace(pinv(cov_f) cov_g)`` with NumPy (Bao et al. 2019);
* regularised H-score: scikit-learn's ``ledoit_wolf`` covariance, ``trace(pinv(shrunk) (1 - a) cov_g)``
  (Ibrahim et al. 2022; TransferGraph's HScoreR).

    python benchmarks/hscore_wide_bench.py --json benchmarks/results/hscore_wide.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

CASES = ((6, 4096, 3), (100, 4096, 10))  # (N, D, C): two samples per class of a 3-class task; 10 of a 10-class one


def textbook(features: np.ndarray, labels: np.ndarray, *, shrink: bool) -> float:
    """The [D, D] formula, with the class-mean covariance ``cov_g`` over the samples' class means."""
    from sklearn.covariance import ledoit_wolf

    centred = features - features.mean(axis=0)
    means = np.stack([centred[labels == c].mean(axis=0) for c in np.unique(labels)])[
        np.searchsorted(np.unique(labels), labels)
    ]
    cov_g = means.T @ means / (len(labels) - 1)
    if shrink:
        cov_f, a = ledoit_wolf(centred)
        cov_g = (1 - a) * cov_g
    else:
        cov_f = centred.T @ centred / (len(labels) - 1)
    rcond = max(features.shape) * np.finfo(np.float64).eps
    return float(np.trace(np.linalg.pinv(cov_f, rcond=rcond, hermitian=True) @ cov_g))


def best_time(fn: Callable[[], float], repeat: int) -> tuple[float, float]:
    """``(best seconds, value)`` over ``repeat`` calls."""
    times, value = [], 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def compare(n: int, d: int, c: int, repeat: int) -> dict[str, dict[str, float]]:
    """Both H-scores of one case: seconds of each path, the speed-up and how far their values differ."""
    from hf_spider.estimators import hscore, reg_hscore

    rng = np.random.default_rng(n)
    labels = np.arange(n) % c
    features = rng.normal(size=(n, d)) + rng.normal(size=(c, d))[labels] + rng.uniform(size=d)  # not centred
    case = {}
    for name, ours, shrink in (("hscore", hscore, False), ("reg_hscore", reg_hscore, True)):
        ours_s, ours_v = best_time(lambda: float(ours(features, labels)), repeat)  # noqa: B023 (called at once)
        ref_s, ref_v = best_time(lambda: textbook(features, labels, shrink=shrink), repeat)  # noqa: B023
        case[name] = {
            "hf_spider_ms": ours_s * 1e3,
            "textbook_seconds": ref_s,
            "speedup": ref_s / ours_s,
            "relative_difference": abs(ours_v - ref_v) / abs(ref_v),
        }
        print(
            f"N={n} D={d} C={c} {name}: {ref_s:.2f} s -> {ours_s * 1e3:.1f} ms, values differ by "
            f"{case[name]['relative_difference']:.1e}"
        )
    return case


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, object] = {
        "environment": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "repeat": args.repeat,
        "cases": {},
    }
    for n, d, c in CASES:
        out["cases"][f"{n}x{d}"] = compare(n, d, c, args.repeat)  # type: ignore[index]
    if args.json:
        from hf_spider.hub.output_paths import atomic_write

        with atomic_write(args.json) as f:
            f.write(json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
