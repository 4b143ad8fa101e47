"""Rebuild ``hf_spider/data/timm_facts.csv``: measured facts of every pre-trained timm model, keyed by Hub repo id.

Source: ``shared/data/timm`` (timm's ``results/`` folder, huggingface/pytorch-image-models commit aa4b585,
Apache-2.0; see its README). One row per ``timm/<architecture>.<tag>`` repo:

* ``top1`` / ``top5``: ImageNet-1k accuracy (percent) at the best evaluated resolution, ``img_size`` the smallest
  evaluated one (the training resolution; a model evaluated at several sizes appears several times in the source);
* ``imagenet_r_top1`` / ``sketch_top1``: the same model on ImageNet-R and ImageNet-Sketch (robustness to shift);
* ``param_count``: parameters (with the 1000-class head);
* ``pretraining``: the sources its tag names (``hf_spider.hub.pretraining``), else the architecture's ``pretrain``
  column of ``model_metadata-in1k.csv``, ``;``-joined;
* ``gmacs``, ``gpu_samples_per_s`` (RTX 4090, AMP, batch 256) and ``cpu_samples_per_s`` (i7-12700H, batch 1) of the
  architecture at that resolution, when benchmarked.

The output is deterministic (rows sorted by repo id, fixed float formats).

    python scripts/build_timm_facts.py --shared ../shared
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hf_spider.hub.index import atomic_write
from hf_spider.hub.pretraining import pretraining_sources

OUTPUT = Path(__file__).resolve().parents[1] / "hf_spider" / "data" / "timm_facts.csv"


def _results(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["param_count"] = frame.param_count.astype(str).str.replace(",", "").astype(float)
    return frame


def build(shared: Path) -> pd.DataFrame:
    folder = shared / "data" / "timm"
    clean = _results(folder / "results-imagenet.csv")
    best = clean.sort_values(["model", "top1"], ascending=[True, False]).drop_duplicates("model")
    smallest = clean.groupby("model").img_size.min()
    facts = best.set_index("model")[["top1", "top5", "param_count"]].join(smallest)
    for name, column in (("results-imagenet-r.csv", "imagenet_r_top1"), ("results-sketch.csv", "sketch_top1")):
        shifted = _results(folder / name).sort_values(["model", "top1"], ascending=[True, False])
        facts[column] = shifted.drop_duplicates("model").set_index("model").top1
    facts["architecture"] = [m.split(".", 1)[0] for m in facts.index]
    facts["tag"] = [m.split(".", 1)[1] if "." in m else "" for m in facts.index]
    metadata = pd.read_csv(folder / "model_metadata-in1k.csv").set_index("model").pretrain
    facts["pretraining"] = [
        ";".join(pretraining_sources(tag) or pretraining_sources(str(metadata.get(arch, "")).replace("-", "_")))
        for arch, tag in zip(facts.architecture, facts.tag, strict=True)
    ]
    for name, column in (
        ("benchmark-infer-amp-nchw-pt291-cu128-4090.csv", "gpu_samples_per_s"),
        ("benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv", "cpu_samples_per_s"),
    ):
        bench = pd.read_csv(folder / name)
        by_size = bench.set_index(["model", "infer_img_size"])
        any_size = bench.drop_duplicates("model").set_index("model")
        rates, macs = [], []
        for arch, size in zip(facts.architecture, facts.img_size, strict=True):
            if (arch, size) in by_size.index:
                row = by_size.loc[(arch, size)]
            else:
                row = any_size.loc[arch] if arch in any_size.index else None
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            rates.append(None if row is None else float(row.infer_samples_per_sec))
            macs.append(None if row is None else float(row.infer_gmacs))
        facts[column] = rates
        if "gmacs" not in facts:
            facts["gmacs"] = macs
        else:
            facts["gmacs"] = facts.gmacs.fillna(pd.Series(macs, index=facts.index))
    facts.insert(0, "repo_id", ["timm/" + m for m in facts.index])
    columns = [
        "repo_id", "architecture", "tag", "img_size", "top1", "top5", "imagenet_r_top1", "sketch_top1",
        "param_count", "pretraining", "gmacs", "gpu_samples_per_s", "cpu_samples_per_s",
    ]  # fmt: skip
    facts = facts.reset_index(drop=True)[columns].sort_values("repo_id").reset_index(drop=True)
    facts["param_count"] = (facts.param_count * 1e6).round().astype("Int64")
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    facts = build(args.shared)
    with atomic_write(args.output) as f:
        facts.to_csv(f, index=False, float_format="%.3f")
    print(f"wrote {len(facts)} models to {args.output}")


if __name__ == "__main__":
    main()
