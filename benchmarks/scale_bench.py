"""Scoring cost of the shipped scorer: N candidate tokens against one task, N = 1k / 10k / 100k / 1M.

What a crawl of the Hub gives: a few hundred models the scorer has records of (each read by the scorer network,
whose task side is computed once and folded into the weights) and a great many it has never seen, scored by the
cold-start forest from the head of their tokens (every tree walked for all of them at once), a quarter of them with a
seen ancestor. Tokens are random (the cost does not depend on their values). Acceptance: 100k candidates in at most
1 s. The machine may be shared: the JSON records the load average around the run.

    python benchmarks/scale_bench.py --json benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from hf_spider.hub.output_paths import atomic_write
from hf_spider.scorer.model import TransferScorer
from hf_spider.scorer.ranker import default_scorer_path
from hf_spider.tokens.ptm import PTMTokens, token_dim
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics

SIZES = (1_000, 10_000, 100_000, 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per size")
    parser.add_argument("--classes", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    scorer = TransferScorer.from_pretrained(default_scorer_path()).eval()
    text_dim = scorer.text_dim
    description = TaskDescription(name="bench", modality="image", label_names=tuple(map(str, range(args.classes))))
    task = TaskTokens(
        description=description,
        label_embeddings=rng.standard_normal((args.classes, text_dim)).astype(np.float32),
        prototypes=rng.standard_normal((args.classes, text_dim)).astype(np.float32),
        statistics=task_statistics(description),
    )
    count = max(SIZES)
    features = rng.standard_normal((count, token_dim(text_dim))).astype(np.float32)
    seen = list(scorer.model_ids)
    ids = tuple(seen[i] if i < len(seen) else f"unseen/m{i}" for i in range(count))
    lineage = tuple((seen[i % len(seen)],) if i >= len(seen) and i % 4 == 0 else () for i in range(count))
    seconds = {}
    load = os.getloadavg()[0]  # the machine is shared: a busy one inflates every timing
    for n in SIZES:
        tokens = PTMTokens(model_ids=ids[:n], features=features[:n], text_dim=text_dim, ancestors=lineage[:n])
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scorer.score_tokens(tokens, task)
            times.append(time.perf_counter() - start)
        seconds[str(n)] = min(times)
        print(f"{n:>9,d} candidates: {seconds[str(n)]:.3f} s  ({seconds[str(n)] / n * 1e6:.2f} us / candidate)")
    if args.json:
        result = {
            "seconds": seconds,
            "meta": {
                "classes": args.classes,
                "members": len(scorer.members),
                "seen_models": len(seen),
                "forest_trees": int(scorer.forest_feature.shape[0]),
                "repeats": args.repeats,
                "seed": 0,
                "torch_threads": torch.get_num_threads(),
                "load_average_1m_before": load,
                "load_average_1m_after": os.getloadavg()[0],
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
        }
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
