"""The benchmark zoo builder (benchmarks/zoo/build.py) on its reduced configuration: 2 models x 1 target x 1 seed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from hf_spider.finetune_records import read_records_csv, write_records_csv
from hf_spider.hub.local import records_from_dir

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"


@pytest.fixture(scope="module")
def zoo_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zoo_build", ZOO / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["zoo_build"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def first_build(zoo_build: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    cache = tmp_path_factory.mktemp("zoo_a")
    return cache, zoo_build.build(zoo_build.ZooConfig.reduced(), cache=cache)


def test_two_builds_give_identical_records_and_weights(
    zoo_build: ModuleType, first_build: tuple[Path, Any], tmp_path: Path
) -> None:
    _, first = first_build
    second = zoo_build.build(zoo_build.ZooConfig.reduced(), cache=tmp_path)
    pd.testing.assert_frame_equal(first.records.accuracy, second.records.accuracy)
    assert len(first.records.accuracy) == 2
    for model in ("resnet-s-shapes-a", "resnet-s-stripes-orientation"):
        weights = [b.repos / "hf-spider-zoo" / model / "model.safetensors" for b in (first, second)]
        assert weights[0].read_bytes() == weights[1].read_bytes()
    # the records CSV written from them is byte-identical too (what gets committed)
    write_records_csv(first.records, tmp_path / "a.csv")
    write_records_csv(second.records, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert read_records_csv(tmp_path / "a.csv").accuracy.shape == (2, 4)


def test_resumed_build_reuses_cached_results(zoo_build: ModuleType, first_build: tuple[Path, Any]) -> None:
    cache, first = first_build
    finetune_file = next((cache / f"v{zoo_build.ZOO_VERSION}" / "finetunes").glob("*.json"))
    stamp = finetune_file.stat().st_mtime_ns
    again = zoo_build.build(zoo_build.ZooConfig.reduced(), cache=cache)
    assert finetune_file.stat().st_mtime_ns == stamp  # read back, not recomputed
    pd.testing.assert_frame_equal(first.records.accuracy, again.records.accuracy)
    assert again.pretrain_seconds == first.pretrain_seconds


def test_repos_carry_card_metadata_the_crawler_reads(first_build: tuple[Path, Any]) -> None:
    _, first = first_build
    records = {r.repo_id: r for r in records_from_dir(first.repos)}
    child = records["hf-spider-zoo/resnet-s-stripes-orientation"]
    assert child.error is None
    assert child.base_models == ("hf-spider-zoo/resnet-s-shapes-a",)
    assert child.datasets == ("hf-spider-zoo/stripes-orientation",)
    assert child.label_names == ("horizontal", "vertical", "diagonal")
    assert child.eval_results is not None and child.eval_results[0].metric == "accuracy"
    assert child.num_parameters is not None and child.num_parameters > 0
    assert records["hf-spider-zoo/resnet-s-shapes-a"].base_models is None


def test_zoo_served_by_the_loopback_hub_crawls_like_the_folder(
    first_build: tuple[Path, Any], loopback_hub: Any, tmp_path: Path
) -> None:
    spec = importlib.util.spec_from_file_location("zoo_run", ZOO / "run.py")
    assert spec is not None and spec.loader is not None
    zoo_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo_run)
    _, first = first_build
    zoo_run._serve(loopback_hub, first.repos)
    crawled, _ = zoo_run._crawl(loopback_hub.endpoint, tmp_path)
    local = {r.repo_id: r for r in records_from_dir(first.repos)}
    assert sorted(r.repo_id for r in crawled) == sorted(local)
    for record in crawled:
        assert record.sha is not None
        for name in ("base_models", "datasets", "label_names", "num_parameters", "pipeline_tag"):
            assert getattr(record, name) == getattr(local[record.repo_id], name), name
