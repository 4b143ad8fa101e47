"""Scoring cost of the Model Spider scorer: N candidate tokens against one task, N = 1k / 10k / 100k / 1M.

The task side is computed once and folded into the weights; candidates go through two fused matmuls per batch
(text projection, then every ensemble member's first layer at once) and a few thin ``H x H`` products. Tokens are
random (the cost does not depend on their values); the scorer has the shipped default's shape. Acceptance: 100k
candidates in at most 1 s. The machine may be shared: the JSON records the load average around the run.

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

from hf_spider.hub.index import atomic_write
from hf_spider.scorer.model import TransferScorer
from hf_spider.tokens.ptm import PTMTokens, token_dim
from hf_spider.tokens.task import TaskDescription, TaskTokens, task_statistics

SIZES = (1_000, 10_000, 100_000, 1_000_000)
TEXT_DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per size")
    parser.add_argument("--classes", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    scorer = TransferScorer(in_dim=token_dim(TEXT_DIM), text_dim=TEXT_DIM, members=3).eval()
    description = TaskDescription(name="bench", modality="image", label_names=tuple(map(str, range(args.classes))))
    task = TaskTokens(
        description=description,
        label_embeddings=rng.standard_normal((args.classes, TEXT_DIM)).astype(np.float32),
        prototypes=rng.standard_normal((args.classes, TEXT_DIM)).astype(np.float32),
        statistics=task_statistics(description),
    )
    features = rng.standard_normal((max(SIZES), token_dim(TEXT_DIM))).astype(np.float32)
    ids = tuple(f"m{i}" for i in range(max(SIZES)))
    seconds = {}
    load = os.getloadavg()[0]  # the machine is shared: a busy one inflates every timing
    for n in SIZES:
        tokens = PTMTokens(model_ids=ids[:n], features=features[:n], text_dim=TEXT_DIM)
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
                "members": 3,
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
