"""The embedded default pool (``data/default_pool.parquet``) and its precomputed PTM tokens."""

from __future__ import annotations

import csv
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from hf_spider.hub.pool import load_default_pool
from hf_spider.tokens.pool_tokens import precomputed_tokens
from hf_spider.tokens.ptm import ptm_tokens

MTEB_MODELS = Path(str(resources.files("hf_spider") / "data" / "mteb" / "models.csv"))


def test_pool_holds_the_three_sources_each_record_with_its_provenance() -> None:
    pool = load_default_pool()
    sized = [r for r in pool if r.num_parameters is not None]
    assert sum(r.modality == "image" for r in sized) >= 1500 and sum(r.modality == "text" for r in sized) >= 250
    assert {r.extra["source"] for r in pool} == {"transfergraph", "timm", "mteb"}
    assert all(r.extra["provenance"] for r in pool)
    assert all(r.sha is None for r in pool)  # no source states a revision


def test_pool_holds_every_mteb_encoder_under_its_hub_id() -> None:
    with MTEB_MODELS.open(encoding="utf-8", newline="") as f:
        mteb = {row["model"] for row in csv.DictReader(f)}
    by_id = {r.repo_id: r for r in load_default_pool()}
    assert mteb <= set(by_id) and all(by_id[m].modality == "text" for m in mteb)


def test_pool_holds_every_timm_hub_repo_of_the_installed_registry() -> None:
    timm = pytest.importorskip("timm")
    from timm.models import get_pretrained_cfg

    timm_record = next(r for r in load_default_pool() if r.extra["source"] == "timm")
    built_with = timm_record.extra["provenance"]["architectures"]  # "timm <version> pretrained registry ..."
    if not built_with.startswith(f"timm {timm.__version__} "):
        pytest.skip(f"the pool was built with {built_with.split(' pretrained')[0]}; rebuild it for this timm")
    hub_ids = {get_pretrained_cfg(n).hf_hub_id for n in timm.list_pretrained()}
    timm_ids = {h for h in hub_ids if h and h.startswith("timm/")}
    by_id = {r.repo_id: r for r in load_default_pool()}
    assert timm_ids <= set(by_id)
    resnet = by_id["timm/resnet50.a1_in1k"]
    assert (resnet.library_name, resnet.architectures, resnet.pretrained_tag) == ("timm", ("resnet50",), "a1_in1k")
    assert resnet.imagenet_top1 is not None and resnet.num_parameters is not None


def test_precomputed_tokens_equal_the_tokens_built_from_the_records() -> None:
    pool = load_default_pool()
    chosen = pool[::97]  # every source, image and text
    precomputed = precomputed_tokens(chosen)
    built = ptm_tokens(chosen)
    assert precomputed is not None and precomputed.model_ids == built.model_ids
    np.testing.assert_allclose(precomputed.features, built.features, atol=1e-6)
    assert precomputed.ancestors == built.ancestors and precomputed.facts == built.facts


def test_a_changed_record_misses_the_precomputed_tokens(monkeypatch) -> None:
    from hf_spider.tokens import pool_tokens

    # Index files other tests read in this process may hold the same records; only the shipped tokens are asked here.
    monkeypatch.setattr(pool_tokens, "_INDEXES", {})
    pool = load_default_pool()
    assert precomputed_tokens([pool[0], replace(pool[1], num_parameters=7)]) is None
    assert precomputed_tokens(pool[:2], text_encoder="someone/another-encoder") is None


def test_an_index_file_gets_its_tokens_built_once_and_cached(tmp_path, monkeypatch) -> None:
    from hf_spider import constants
    from hf_spider.hub.index import write_index
    from hf_spider.ranking import load_candidates

    monkeypatch.setattr(constants, "CACHE_DIR", tmp_path / "cache")
    renamed = [replace(r, repo_id=f"someone/model-{i}") for i, r in enumerate(load_default_pool()[::50])]
    path = write_index(renamed, tmp_path / "index.parquet")
    records = load_candidates(path)
    tokens = precomputed_tokens(records[3:9])
    assert tokens is not None and len(list((tmp_path / "cache" / "pool_tokens").iterdir())) == 1
    np.testing.assert_allclose(tokens.features, ptm_tokens(records[3:9]).features, atol=1e-6)
    assert precomputed_tokens([replace(records[0], num_parameters=7)]) is None
