"""The live Hub as a pool (:mod:`hf_spider.hub.live`) against the loopback Hub: listing, cache, incremental refresh,
details on demand, and an index pushed by ``crawl --push-to-hub`` read back by ``hf://datasets/...``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hf_spider.cli import main
from hf_spider.errors import InvalidIndexError, UnknownCandidateError
from hf_spider.hub.index import read_index
from hf_spider.hub.live import LISTINGS, HubPool, read_dataset_index
from hf_spider.ranking import load_candidates
from hf_spider.testing import LoopbackHub
from hf_spider.testing.loopback_hub import repo_key

CARD = "---\npipeline_tag: image-classification\nlicense: mit\n---\n# {name}\nA ViT fine-tuned on {name}.\n"


def _add_image_models(hub: LoopbackHub, count: int) -> None:
    for i in range(count):
        name = f"acme/vit-{i}"
        config = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "id2label": {"0": f"c{i}"}}
        hub.add_repo(name, {"README.md": CARD.format(name=name), "config.json": json.dumps(config)}, downloads=100 - i)
    hub.add_repo("acme/bert", {"README.md": "---\npipeline_tag: text-classification\n---\n"}, downloads=1000)


def test_hub_pool_lists_the_modality_and_caches_it(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    _add_image_models(loopback_hub, 5)
    pool = HubPool("image", cache_dir=tmp_path)
    records = pool.records()
    assert sorted(r.repo_id for r in records) == [f"acme/vit-{i}" for i in range(5)]
    assert pool.index_path.is_file() and loopback_hub.count("/resolve/") == 0  # the listing alone, no file
    assert all(r.sha is not None and r.downloads is not None for r in records)


def test_a_second_call_fetches_only_what_changed(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    _add_image_models(loopback_hub, 5)
    pool = HubPool("image", cache_dir=tmp_path)
    pool.with_details(pool.records(), ["acme/vit-0", "acme/vit-1"])
    assert loopback_hub.count("/resolve/") == 4  # README and config of each shortlisted model
    loopback_hub.update_repo("acme/vit-1", {"README.md": CARD.format(name="changed")})
    loopback_hub.clear_requests()
    records = pool.with_details(pool.records(), ["acme/vit-0", "acme/vit-1"])
    assert loopback_hub.count("/resolve/") == 2 and loopback_hub.count("/acme/vit-1/resolve/") == 2
    assert loopback_hub.count("^/api/models$") == len(LISTINGS["image"])  # one page per listing
    detailed = {r.repo_id: r for r in records}
    assert "changed" in (detailed["acme/vit-1"].card_text or "") and detailed["acme/vit-0"].label_names == ("c0",)
    assert detailed["acme/vit-2"].card_text is None  # not shortlisted: listing fields only


def test_rank_hub_fetches_details_for_the_shortlist_only(
    loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from hf_spider import constants

    monkeypatch.setattr(constants, "CACHE_DIR", tmp_path)
    _add_image_models(loopback_hub, 6)
    argv = ["rank", "--labels", "cat,dog", "--modality", "image", "--candidates", "hub", "--top-k", "2"]
    assert main([*argv, "--format", "json"]) == 0
    shortlist = json.loads(capsys.readouterr().out)
    assert len(shortlist["entries"]) == 2 and shortlist["metadata"]["candidates"] == 6
    fetched = {r.path.split("/resolve/")[0].strip("/") for r in loopback_hub.requests if "/resolve/" in r.path}
    assert fetched and fetched <= {e["model_id"] for e in shortlist["entries"]}  # details for shown models only


def test_crawl_push_to_hub_is_read_back_pinned_by_revision(
    loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_TOKEN", loopback_hub.token)
    _add_image_models(loopback_hub, 3)
    index = tmp_path / "index.parquet"
    argv = ["crawl", "--index", str(index), "--pipeline-tag", "image-classification", "--push-to-hub", "tester/idx"]
    assert main(argv) == 0
    first = loopback_hub.repos[repo_key("tester/idx", "dataset")].head.oid
    records = load_candidates("hf://datasets/tester/idx")
    assert [r.repo_id for r in records] == [r.repo_id for r in read_index(index)]
    loopback_hub.add_repo("acme/vit-new", {"README.md": CARD.format(name="new")}, downloads=1)
    assert main(argv) == 0
    assert len(load_candidates("hf://datasets/tester/idx")) == 4
    assert len(read_dataset_index(f"hf://datasets/tester/idx@{first}")) == 3  # pinned: the first push
    with pytest.raises(InvalidIndexError, match="hf://datasets/ORG/NAME"):
        load_candidates("hf://datasets/not a repo")


def test_a_pushed_index_over_its_cap_is_refused_before_it_is_downloaded(
    loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    """hf_hub_download takes any size: a hostile index of any size was downloaded in full, then read into memory. The
    cap is lowered here so that a small index is over it; once within it, the same index loads."""
    from hf_spider.hub import live
    from hf_spider.hub.index import write_index

    index = write_index(load_candidates(None)[:50], tmp_path / "index.parquet")
    loopback_hub.add_repo("tester/idx", {live.PUSHED_INDEX: index.read_bytes()}, repo_type="dataset")
    size = index.stat().st_size
    monkeypatch.setattr(live, "MAX_PUSHED_INDEX_BYTES", size - 1)
    argv = ["rank", "--labels", "cat,dog", "--modality", "image", "--candidates", "hf://datasets/tester/idx"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"index.parquet of dataset tester/idx is {size:,} bytes on the Hub, over the {size - 1:,} an index may have, "
        "so it is not downloaded; check the repo, or pass a local index file or one `hf-spider crawl --push-to-hub` "
        "wrote"
    )
    assert [(r.method, r.path) for r in loopback_hub.requests] == [("POST", "/api/datasets/tester/idx/paths-info/main")]
    monkeypatch.setattr(live, "MAX_PUSHED_INDEX_BYTES", size)
    loopback_hub.clear_requests()
    assert len(read_dataset_index("hf://datasets/tester/idx")) == 50
    assert loopback_hub.count("/paths-info/", method="POST") == 1 and loopback_hub.count("/resolve/", method="GET") == 1
    loopback_hub.clear_requests()
    assert len(read_dataset_index("hf://datasets/tester/idx")) == 50  # cached: no size asked
    assert loopback_hub.count("/paths-info/") == 0


def test_repo_ids_and_a_hub_query_are_pools_too(loopback_hub: LoopbackHub) -> None:
    _add_image_models(loopback_hub, 3)
    bundled = load_candidates(None)[0]
    records = load_candidates([bundled.repo_id, "acme/vit-2"])  # the default pool's record; the Hub's model_info
    assert records[0] == bundled and records[1].repo_id == "acme/vit-2" and records[1].sha is not None
    assert loopback_hub.count("^/api/models/acme/vit-2") == 1 and loopback_hub.count(bundled.repo_id) == 0
    with pytest.raises(UnknownCandidateError, match="acme/nope"):
        load_candidates(["acme/nope"])
    query = load_candidates({"pipeline_tag": "image-classification", "limit": 2})
    assert [r.repo_id for r in query] == ["acme/vit-0", "acme/vit-1"]  # most downloaded first, cut at the limit


def test_rank_cuts_the_hub_pool_by_creation_day(
    loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from hf_spider import constants

    monkeypatch.setattr(constants, "CACHE_DIR", tmp_path)
    for i, created in enumerate((datetime(2020, 5, 1), datetime(2024, 2, 1), datetime(2025, 7, 1))):
        config = {"model_type": "vit", "architectures": ["ViTForImageClassification"]}
        name = f"acme/vit-{i}"
        files = {"README.md": CARD.format(name=name), "config.json": json.dumps(config)}
        loopback_hub.add_repo(name, files, created_at=created.replace(tzinfo=timezone.utc))
    argv = ["rank", "--labels", "cat,dog", "--modality", "image", "--candidates", "hub", "--format", "json"]
    assert main([*argv, "--created-after", "2024-01-01"]) == 0
    shortlist = json.loads(capsys.readouterr().out)
    assert sorted(e["model_id"] for e in shortlist["entries"]) == ["acme/vit-1", "acme/vit-2"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--created-after", "2024-13-01"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "YYYY-MM-DD" in err[0] and "Traceback" not in err[0]
