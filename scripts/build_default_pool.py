"""Build ``hf_spider/data/default_pool.parquet``: the embedded default candidate pool, every record with its provenance.

    python scripts/build_default_pool.py

Three sources, each record's ``extra["source"]`` naming its own and ``extra["provenance"]`` naming where each
field it fills came from (see ``docs/pool.md``):

* ``transfergraph``: the 349 models of the TransferGraph records, as ``data/bundled_index.jsonl`` holds them
  (``scripts/build_bundled_data.py``);
* ``timm``: every Hub repo (``timm/<architecture>.<tag>``) the installed timm package's pretrained registry declares
  (``timm.list_pretrained()``; ``pretrained_cfg``: hub id, architecture, tag, input size, license, number of classes),
  read the way a crawl reads a timm ``config.json`` (``hf_spider.hub.layouts``), joined with
  ``data/timm_facts.csv`` (ImageNet results, GMACs). The parameter count is timm's published one where the facts
  have the model with ImageNet's 1000-class head, else counted by building the architecture on PyTorch's ``meta``
  device (no weights are downloaded or allocated);
* ``mteb``: the text encoders of ``data/mteb/models.csv`` (MTEB's ``ModelMeta``: parameters, license, release date,
  the model it was adapted from, embedding size, maximum tokens).

No source states a revision, so no record names one (the shortlist says so). Copies of one checkpoint stay separate
records here (training looks models up by the id their records name); ranking collapses them
(:func:`hf_spider.hub.dedup.collapse_copies`). The pool's PTM tokens are precomputed with the default scorer's text
encoder beside it (:mod:`hf_spider.tokens.pool_tokens`). Deterministic for one timm version: rows are sorted by repo
id.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from hf_spider.hub.index import read_index, write_index
from hf_spider.hub.layouts import derive_fields, layout_fields
from hf_spider.hub.pool import default_pool_path
from hf_spider.hub.records import ModelRecord
from hf_spider.tokens.pool_tokens import POOL_TOKENS_DIR, write_pool_tokens

DATA = Path(__file__).resolve().parents[1] / "hf_spider" / "data"
logger = logging.getLogger("build_default_pool")


def transfergraph_records() -> list[ModelRecord]:
    """The bundled TransferGraph index, each record marked with its provenance."""
    source = "TransferGraph records (data/bundled_index.jsonl, scripts/build_bundled_data.py)"
    records = read_index(DATA / "bundled_index.jsonl")
    return [replace(r, extra={**r.extra, "source": "transfergraph", "provenance": {"*": source}}) for r in records]


def timm_records() -> list[ModelRecord]:
    """One record per ``timm/*`` Hub repo of the installed timm's pretrained registry."""
    import timm
    from timm.models import get_pretrained_cfg

    facts = _timm_facts()
    registry = f"timm {timm.__version__} pretrained registry (pretrained_cfg)"
    counts: dict[tuple[str, int, int | None], int] = {}
    records: dict[str, ModelRecord] = {}
    for name in sorted(timm.list_pretrained()):
        cfg = get_pretrained_cfg(name)
        hub_id = cfg.hf_hub_id if cfg is not None else None
        if cfg is None or not hub_id or not hub_id.startswith("timm/") or hub_id in records:
            continue
        config = {"architecture": cfg.architecture, "num_classes": cfg.num_classes, "pretrained_cfg": cfg.to_dict()}
        fields = layout_fields(config)
        provenance = {
            name: registry for name in ("architectures", "model_type", "pretrained_tag", "input_size", "num_labels")
        }
        row = facts.get(hub_id)
        if row is not None and cfg.num_classes == 1000 and row["param_count"]:
            num_parameters = int(float(row["param_count"]))
            provenance["num_parameters"] = "timm results (data/timm_facts.csv param_count)"
        else:
            input_size = fields.get("input_size")
            key = (str(cfg.architecture), int(cfg.num_classes or 0), input_size)
            if key not in counts:
                counts[key] = _meta_count(name)
            num_parameters = counts[key]
            provenance["num_parameters"] = f"counted: timm {timm.__version__} create_model on the meta device"
        extra: dict[str, Any] = {}
        if row is not None:
            provenance.update({"imagenet_top1": "timm results (data/timm_facts.csv)", "gmacs": "data/timm_facts.csv"})
        if cfg.license:
            provenance["license"] = registry
        record = ModelRecord(
            repo_id=hub_id,
            pipeline_tag="image-classification" if cfg.num_classes else "image-feature-extraction",
            num_parameters=num_parameters,
            license=cfg.license or None,
            imagenet_top1=_number(row, "top1"),
            gmacs=_number(row, "gmacs"),
            extra=extra,
            **fields,
        )
        provenance["pipeline_tag"] = "pool builder: timm models classify images (num_classes 0: a feature backbone)"
        records[hub_id] = _with_provenance(derive_fields(record), "timm", provenance)
    return list(records.values())


def mteb_records() -> list[ModelRecord]:
    """One record per MTEB text encoder of ``data/mteb/models.csv``."""
    source = "MTEB ModelMeta (data/mteb/models.csv)"
    records = []
    with (DATA / "mteb" / "models.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            max_tokens = _number(row, "max_tokens")
            embed_dim = row["embed_dim"].strip()
            extra: dict[str, Any] = {"release_date": row["release_date"] or None}
            if embed_dim.isdigit():
                extra["embedding_size"] = int(embed_dim)
            provenance = {
                key: source
                for key, value in (
                    ("num_parameters", row["n_parameters"]),
                    ("license", row["license"]),
                    ("base_models", row["base_model"]),
                    ("input_size", max_tokens),
                    ("release_date", row["release_date"]),
                    ("embedding_size", extra.get("embedding_size")),
                )
                if value
            }
            provenance["pipeline_tag"] = "pool builder: MTEB evaluates text embedding models"
            record = ModelRecord(
                repo_id=row["model"],
                pipeline_tag="feature-extraction",
                num_parameters=int(float(row["n_parameters"])) if row["n_parameters"] else None,
                license=row["license"] or None,
                base_models=(row["base_model"],) if row["base_model"] else None,
                input_size=int(max_tokens) if max_tokens is not None and math.isfinite(max_tokens) else None,
                extra=extra,
            )
            records.append(_with_provenance(derive_fields(record), "mteb", provenance))
    return records


def build() -> list[ModelRecord]:
    """Every source, one record per repo id (an earlier source wins a repo id two name)."""
    by_id: dict[str, ModelRecord] = {}
    for records in (transfergraph_records(), timm_records(), mteb_records()):
        for record in records:
            by_id.setdefault(record.repo_id, record)
    return sorted(by_id.values(), key=lambda r: r.repo_id)


def _with_provenance(record: ModelRecord, source: str, provenance: dict[str, str]) -> ModelRecord:
    """``record`` naming its source and, for each field it holds, where that came from."""
    known = {k: v for k, v in provenance.items() if getattr(record, k, record.extra.get(k)) is not None}
    return replace(record, extra={**record.extra, "source": source, "provenance": dict(sorted(known.items()))})


def _timm_facts() -> dict[str, dict[str, str]]:
    with (DATA / "timm_facts.csv").open(encoding="utf-8", newline="") as f:
        return {row["repo_id"]: row for row in csv.DictReader(f)}


def _number(row: dict[str, str] | None, key: str) -> float | None:
    value = (row or {}).get(key) or ""
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _meta_count(name: str) -> int:
    """Parameters of a timm model with its pretrained head, built on the meta device (no memory, no download)."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=default_pool_path())
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records = build()
    write_index(records, args.output)
    write_pool_tokens(records, args.output, args.output.parent / POOL_TOKENS_DIR)
    image = sum(r.modality == "image" for r in records)
    text = sum(r.modality == "text" for r in records)
    logger.info("wrote %s: %d image and %d text candidates", args.output, image, text)


if __name__ == "__main__":
    main()
