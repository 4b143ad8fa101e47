"""Ten real ImageNet CNNs that have no fine-tuning record, in three Hub layouts, ranked through the public CLI.

The CNNs of LogME's and Model Spider's zoo (ResNet-34/50/101/152, DenseNet-121/169/201, MNASNet, MobileNetV2,
Inception V3; their torchvision weights as timm publishes them) are written as the repos a crawl finds:

* ``timm``: ``timm/<architecture>.<tag>`` with timm's ``config.json`` and a card with its "Model Stats";
* ``wrapper``: a transformers ``timm_wrapper`` repo with ``base_model`` on its card and no stats;
* ``transformers``: a port whose ``config.json`` names the timm weights in ``_name_or_path``, with no card stats.

Each layout is ranked with ``hf-spider rank --candidates DIR --labels ... --modality image --format json`` on four
label-name tasks. No fine-tuned accuracy of these models is shipped, so this measures what can be measured without
one: that a model ranks the same whatever its layout (Kendall tau between layouts), what the order follows
(Kendall tau with parameter count and with ImageNet top-1, timm's measured figures), and whether the task moves it
(Kendall tau between tasks; 1.0 means the same list for every task).

    python benchmarks/cnn_layouts_bench.py --json benchmarks/results/cnn_layouts.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import tempfile
from pathlib import Path

from scipy.stats import kendalltau

from hf_spider.cli import main as cli
from hf_spider.hub.output_paths import atomic_write
from hf_spider.tokens.facts import timm_facts

MODELS = (
    "resnet34.tv_in1k",
    "resnet50.tv_in1k",
    "resnet101.tv_in1k",
    "resnet152.tv_in1k",
    "densenet121.tv_in1k",
    "densenet169.tv_in1k",
    "densenet201.tv_in1k",
    "mnasnet_100.rmsp_in1k",
    "mobilenetv2_100.ra_in1k",
    "inception_v3.tv_in1k",
)
TASKS = {
    "pets": "cat,dog,bird",
    "skin lesions": "benign,malignant",
    "aircraft": "boeing 737,airbus a320,cessna 172,dash 8",
    "digits": "0,1,2,3,4,5,6,7,8,9",
}
LAYOUTS = ("timm", "wrapper", "transformers")
JSON_ALL = ("--format", "json", "--top-k", "0")
#: transformers ``model_type`` of the families that have one; the others keep their timm architecture name.
PORT_TYPES = {"resnet": "resnet", "mobilenetv2": "mobilenet_v2"}


def write_repo(root: Path, layout: str, model: str) -> str:
    """Write ``model`` in ``layout`` under ``root``; returns its repo id."""
    architecture, tag = model.split(".")
    row = timm_facts()[f"timm/{model}"]
    size = row.facts.img_size or 224
    config = {
        "architecture": architecture,
        "num_classes": 1000,
        "pretrained_cfg": {"tag": tag, "input_size": [3, size, size], "num_classes": 1000},
    }
    if layout == "timm":
        repo_id = f"timm/{model}"
        card = (
            "---\ntags:\n- image-classification\n- timm\nlibrary_name: timm\nlicense: apache-2.0\ndatasets:\n"
            f"- imagenet-1k\n---\n# Model card for {model}\n\n## Model Details\n- **Model Stats:**\n"
            f"  - Params (M): {row.param_count / 1e6:.1f}\n  - GMACs: {row.facts.gmacs}\n"
            f"  - Image size: {size} x {size}\n"
        )
        files = {"config.json": json.dumps(config), "README.md": card}
    elif layout == "wrapper":
        repo_id = f"someone/{architecture}-{tag}"
        wrapper = {**config, "model_type": "timm_wrapper", "architectures": ["TimmWrapperForImageClassification"]}
        card = f"---\nlibrary_name: transformers\npipeline_tag: image-classification\nbase_model: timm/{model}\n---\n"
        files = {"config.json": json.dumps(wrapper), "README.md": card}
    else:
        repo_id = f"someone/{architecture}-hf"
        model_type = next((t for prefix, t in PORT_TYPES.items() if architecture.startswith(prefix)), architecture)
        port = {"model_type": model_type, "_name_or_path": f"timm/{model}", "num_labels": 1000, "image_size": size}
        card = "---\nlibrary_name: transformers\npipeline_tag: image-classification\n---\n"
        files = {"config.json": json.dumps(port), "README.md": card}
    folder = root / repo_id
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return repo_id


def ranked(candidates: Path, labels: str) -> list[str]:
    """Repo ids in the order ``hf-spider rank`` lists them."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["rank", "--candidates", str(candidates), "--labels", labels, "--modality", "image", *JSON_ALL])
    if code != 0:
        raise SystemExit(f"hf-spider rank exited {code}")
    return [entry["model_id"] for entry in json.loads(out.getvalue())["entries"]]


def tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = timm_facts()
    params = [float(table[f"timm/{m}"].param_count) for m in MODELS]
    top1 = [table[f"timm/{m}"].facts.top1 for m in MODELS]
    positions: dict[str, dict[str, list[float]]] = {}  # layout -> task -> minus the rank of each model in MODELS
    with tempfile.TemporaryDirectory() as tmp:
        for layout in LAYOUTS:
            root = Path(tmp) / layout
            repo_of = {write_repo(root, layout, m): m for m in MODELS}
            positions[layout] = {}
            for task, labels in TASKS.items():
                order = [repo_of[r] for r in ranked(root, labels)]
                positions[layout][task] = [-float(order.index(m)) for m in MODELS]
    rows = {}
    print(f"{'layout':14s} {'vs params':>9s} {'vs top-1':>9s} {'between tasks':>13s}  top 3")
    for layout, by_task in positions.items():
        lists = list(by_task.values())
        rows[layout] = {
            "tau_vs_params": sum(tau(p, params) for p in lists) / len(lists),
            "tau_vs_top1": sum(tau(p, top1) for p in lists) / len(lists),
            "tau_between_tasks": sum(tau(a, b) for a, b in itertools.combinations(lists, 2))
            / len(list(itertools.combinations(lists, 2))),
            "order": {
                task: [m for _, m in sorted(zip(p, MODELS, strict=True), reverse=True)] for task, p in by_task.items()
            },
        }
        top3 = ", ".join(rows[layout]["order"]["pets"][:3])
        r = rows[layout]
        print(f"{layout:14s} {r['tau_vs_params']:9.2f} {r['tau_vs_top1']:9.2f} {r['tau_between_tasks']:13.2f}  {top3}")
    between_layouts = {
        f"{a} vs {b}": sum(tau(positions[a][t], positions[b][t]) for t in TASKS) / len(TASKS)
        for a, b in itertools.combinations(LAYOUTS, 2)
    }
    for pair, value in between_layouts.items():
        print(f"same models, {pair}: Kendall tau {value:.2f}")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump({"layouts": rows, "between_layouts": between_layouts, "models": list(MODELS)}, f, indent=1)


if __name__ == "__main__":
    main()
