"""The loopback Hub answers the real huggingface_hub client: listing, info, files, writes, collections, faults."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from hf_spider.testing import DEFAULT_USER, LoopbackHub
from hf_spider.testing.repos import safetensors_bytes

CARD = "---\nlicense: mit\ndatasets: [beans]\n---\n# tiny\n"


def _add(hub: LoopbackHub, repo_id: str, **kw: Any) -> str:
    config = json.dumps({"model_type": "vit", "architectures": ["ViTModel"]})
    files = {"config.json": config, "README.md": CARD, "model.safetensors": safetensors_bytes({"w": (3, 4)})}
    return hub.add_repo(repo_id, files, **kw)


def test_listing_pages_through_link_header_and_sorts(loopback_hub: LoopbackHub) -> None:
    loopback_hub.page_size = 2
    for i in range(5):
        _add(loopback_hub, f"acme/m{i}", downloads=10 * i, pipeline_tag="image-classification")
    api = HfApi(endpoint=loopback_hub.endpoint)
    models = list(api.list_models(sort="downloads", expand=["sha", "downloads"]))
    assert [m.id for m in models] == [f"acme/m{i}" for i in (4, 3, 2, 1, 0)]
    assert loopback_hub.count(r"^/api/models$", method="GET") == 3  # 2 + 2 + 1


def test_listing_expand_sends_card_config_and_safetensors(loopback_hub: LoopbackHub) -> None:
    sha = _add(loopback_hub, "acme/tiny", pipeline_tag="image-classification")
    (info,) = HfApi(endpoint=loopback_hub.endpoint).list_models(
        expand=["sha", "cardData", "config", "safetensors", "pipeline_tag"]
    )
    assert info.sha == sha
    assert info.card_data is not None and info.card_data.license == "mit"
    assert info.config == {"architectures": ["ViTModel"], "model_type": "vit"}
    assert info.safetensors is not None and info.safetensors.total == 12
    assert info.downloads is None  # not asked for, not sent


def test_listing_filters_by_author_search_and_pipeline_tag(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/vit-a", pipeline_tag="image-classification")
    _add(loopback_hub, "acme/bert-b", pipeline_tag="text-classification")
    _add(loopback_hub, "other/vit-c", pipeline_tag="image-classification")
    api = HfApi(endpoint=loopback_hub.endpoint)
    assert {m.id for m in api.list_models(author="acme")} == {"acme/vit-a", "acme/bert-b"}
    assert {m.id for m in api.list_models(search="vit")} == {"acme/vit-a", "other/vit-c"}
    assert {m.id for m in api.list_models(pipeline_tag="text-classification")} == {"acme/bert-b"}


def test_old_revisions_stay_readable(loopback_hub: LoopbackHub) -> None:
    first = _add(loopback_hub, "acme/tiny")
    second = loopback_hub.update_repo("acme/tiny", {"README.md": "---\nlicense: apache-2.0\n---\nnew\n"})
    api = HfApi(endpoint=loopback_hub.endpoint)
    assert api.model_info("acme/tiny").sha == second
    assert api.model_info("acme/tiny", revision=first).card_data.license == "mit"
    old = hf_hub_download("acme/tiny", "README.md", revision=first)
    assert Path(old).read_text() == CARD


def test_paths_info_answers_each_asked_path_as_the_tree_lists_it(loopback_hub: LoopbackHub) -> None:
    """``get_paths_info`` (a form-encoded POST): sizes, blob ids and LFS entries as in the tree listing, a folder as a
    folder, a path the revision lacks left out; another revision answers for its own files."""
    from huggingface_hub.errors import RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    first = _add(loopback_hub, "acme/tiny")
    loopback_hub.update_repo("acme/tiny", {"sub/big.safetensors": b"x" * 5000})
    api = HfApi(endpoint=loopback_hub.endpoint)
    asked = ["config.json", "model.safetensors", "sub", "sub/big.safetensors", "missing.bin"]
    answered = {entry.path: entry for entry in api.get_paths_info("acme/tiny", asked)}
    assert list(answered) == ["config.json", "model.safetensors", "sub", "sub/big.safetensors"]
    assert isinstance(answered.pop("sub"), RepoFolder)
    listed = {entry.path: entry for entry in api.list_repo_tree("acme/tiny", recursive=True)}
    for path, entry in answered.items():
        assert isinstance(entry, RepoFile)
        assert (entry.size, entry.blob_id, entry.lfs) == (listed[path].size, listed[path].blob_id, listed[path].lfs)
    assert answered["config.json"].lfs is None and answered["sub/big.safetensors"].lfs.size == 5000
    assert [e.path for e in api.get_paths_info("acme/tiny", asked, revision=first)] == asked[:2]
    with pytest.raises(RevisionNotFoundError):
        api.get_paths_info("acme/tiny", asked, revision="no-such-branch")
    with pytest.raises(RepositoryNotFoundError):
        api.get_paths_info("acme/nothing", asked)


def test_truncated_download_is_retried_by_the_client(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/tiny")
    rule = loopback_hub.faults.add("truncate", match=r"GET /acme/tiny/resolve/main/README\.md", times=1)
    assert Path(hf_hub_download("acme/tiny", "README.md")).read_text() == CARD
    assert rule.hits == 1
    assert loopback_hub.count("README", method="GET") == 2


def test_range_requests_get_206(loopback_hub: LoopbackHub) -> None:
    from huggingface_hub.utils import get_session

    _add(loopback_hub, "acme/tiny")
    url = f"{loopback_hub.endpoint}/acme/tiny/resolve/main/README.md"
    response = get_session().get(url, headers={"Range": "bytes=4-"})
    assert response.status_code == 206
    assert response.content == CARD.encode()[4:]
    assert response.headers["Content-Range"] == f"bytes 4-{len(CARD) - 1}/{len(CARD)}"


def test_429_carries_retry_after_and_listing_retries(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/tiny")
    loopback_hub.faults.add("429", match="^GET /api/models", times=1, retry_after=0)
    assert [m.id for m in HfApi(endpoint=loopback_hub.endpoint).list_models()] == ["acme/tiny"]
    statuses = [r.status for r in loopback_hub.requests]
    assert statuses == [429, 200]


def test_injected_5xx_and_404_are_typed_by_the_client(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/tiny")
    api = HfApi(endpoint=loopback_hub.endpoint)
    loopback_hub.faults.add("503", match="/api/models/acme/tiny", times=1)
    with pytest.raises(HfHubHTTPError) as info:
        api.model_info("acme/tiny")
    assert info.value.response.status_code == 503
    loopback_hub.faults.add("404", match="/api/models/acme/tiny", times=1)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme/tiny")
    assert api.model_info("acme/tiny").id == "acme/tiny"  # the faults were used up


def test_stalled_answer_times_out_a_bounded_client(loopback_hub: LoopbackHub) -> None:
    import httpx2

    _add(loopback_hub, "acme/tiny")
    loopback_hub.faults.add("stall", match="/api/models/acme/tiny", times=1, stall_s=1.0)
    start = time.monotonic()
    with pytest.raises(httpx2.TimeoutException):
        HfApi(endpoint=loopback_hub.endpoint).model_info("acme/tiny", timeout=0.2)
    assert time.monotonic() - start < 1.0


def test_a_request_answered_after_the_log_was_emptied_stays_out_of_it(loopback_hub: LoopbackHub) -> None:
    """A stalled request of an earlier test ends after the next test's reset: it must not show in that test's log."""
    import httpx2

    _add(loopback_hub, "acme/tiny")
    loopback_hub.faults.add("stall", match="/api/models/acme/tiny", times=1, stall_s=0.5)
    with pytest.raises(httpx2.TimeoutException):
        HfApi(endpoint=loopback_hub.endpoint).model_info("acme/tiny", timeout=0.1)
    loopback_hub.clear_requests()
    time.sleep(0.8)  # the stalled request has ended on the server by now
    assert loopback_hub.requests == []
    HfApi(endpoint=loopback_hub.endpoint).model_info("acme/tiny")
    assert [r.path for r in loopback_hub.requests] == ["/api/models/acme/tiny"]


def test_gated_repo_needs_a_granted_token(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/gated", gated="manual")
    with pytest.raises(GatedRepoError):
        hf_hub_download("acme/gated", "config.json")
    loopback_hub.repos["acme/gated"].granted.add(DEFAULT_USER)
    assert json.loads(Path(hf_hub_download("acme/gated", "config.json", token=loopback_hub.token)).read_text())


def test_private_repo_is_invisible_without_its_owner_token(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, f"{DEFAULT_USER}/secret", private=True)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=loopback_hub.endpoint).model_info(f"{DEFAULT_USER}/secret")
    assert list(HfApi(endpoint=loopback_hub.endpoint).list_models()) == []
    api = HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token)
    assert api.model_info(f"{DEFAULT_USER}/secret").private is True


def test_create_repo_upload_folder_and_snapshot_round_trip(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    api = HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token)
    url = api.create_repo("scorer")
    assert url.repo_id == f"{DEFAULT_USER}/scorer"
    assert api.create_repo("scorer", exist_ok=True).repo_id == url.repo_id  # 409 body carries the url
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    (folder / "model.safetensors").write_bytes(safetensors_bytes({"w": (2, 2)}))
    commit = api.upload_folder(repo_id=url.repo_id, folder_path=folder)
    assert api.model_info(url.repo_id).sha == commit.oid
    again = api.upload_folder(repo_id=url.repo_id, folder_path=folder)  # preupload oids make this a no-op
    assert again.oid == commit.oid
    local = Path(snapshot_download(url.repo_id))
    assert (local / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert sorted(api.list_repo_files(url.repo_id)) == [".gitattributes", "README.md", "model.safetensors"]


def test_dataset_repos_round_trip_apart_from_models(loopback_hub: LoopbackHub, tmp_path: Path) -> None:
    api = HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token)
    api.create_repo("shared-name")  # a model and a dataset may share an id
    url = api.create_repo("shared-name", repo_type="dataset")
    assert url.repo_type == "dataset" and url.repo_id == f"{DEFAULT_USER}/shared-name"
    folder = tmp_path / "records"
    (folder / "pairs").mkdir(parents=True)
    (folder / "pairs" / "a.jsonl").write_text('{"model": "m"}\n')
    commit = api.upload_folder(repo_id=url.repo_id, repo_type="dataset", folder_path=folder)
    assert "/datasets/" in commit.commit_url
    assert api.dataset_info(url.repo_id).sha == commit.oid
    local = Path(snapshot_download(url.repo_id, repo_type="dataset"))
    assert (local / "pairs" / "a.jsonl").read_text() == '{"model": "m"}\n'
    assert api.list_repo_files(url.repo_id) == [".gitattributes"]  # the model repo did not change
    assert [m.id for m in api.list_models()] == [url.repo_id]  # listings list models only


def test_writes_are_refused_without_rights(loopback_hub: LoopbackHub) -> None:
    with pytest.raises(HfHubHTTPError) as info:
        HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token).create_repo("someone-else/x")
    assert info.value.response.status_code == 403
    with pytest.raises(ValueError, match="Invalid metadata"):
        HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token).upload_file(
            path_or_fileobj=b"---\nlicense: [mit\n---\n", path_in_repo="README.md", repo_id=f"{DEFAULT_USER}/x"
        )


def test_collections_create_add_update_list_delete(loopback_hub: LoopbackHub) -> None:
    for i in range(6):
        _add(loopback_hub, f"acme/m{i}")
    api = HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token)
    collection = api.create_collection("My shortlist", description="top models", private=True)
    assert collection.slug.startswith(f"{DEFAULT_USER}/my-shortlist-")
    for i in range(6):
        collection = api.add_collection_item(collection.slug, f"acme/m{i}", "model", note=f"rank {i + 1}")
    again = api.add_collection_item(collection.slug, "acme/m0", "model", note="ignored", exists_ok=True)
    assert again.items[0].note == "rank 1"
    api.update_collection_item(collection.slug, collection.items[0].item_object_id, position=1, note="moved")
    fresh = api.get_collection(collection.slug)
    assert [i.item_id for i in fresh.items[:2]] == ["acme/m1", "acme/m0"]
    assert fresh.items[1].note == "moved"
    (listed,) = api.list_collections(owner=DEFAULT_USER)
    assert len(listed.items) == 4  # listings carry at most 4 items
    assert list(HfApi(endpoint=loopback_hub.endpoint).list_collections(owner=DEFAULT_USER)) == []  # private
    api.delete_collection_item(collection.slug, fresh.items[0].item_object_id)
    assert len(api.get_collection(collection.slug).items) == 5
    with pytest.raises(HfHubHTTPError):
        api.add_collection_item(collection.slug, "acme/missing", "model")
    api.delete_collection(collection.slug)
    api.delete_collection(collection.slug, missing_ok=True)


def test_default_endpoint_is_patched_for_argument_free_calls(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/tiny")
    assert HfApi().model_info("acme/tiny").id == "acme/tiny"
    assert loopback_hub.count("/acme/tiny/resolve") == 0
    hf_hub_download("acme/tiny", "config.json")
    assert loopback_hub.count("/acme/tiny/resolve", method="GET") == 1


def test_hostile_strings_go_out_as_json_escapes_and_dotdot_file_names_are_listed(loopback_hub: LoopbackHub) -> None:
    repo_id = "acme/evil\ud83d\u202e"
    loopback_hub.add_repo(repo_id, {"config.json": "{}", "../../outside.txt": "gotcha"})
    loopback_hub.add_repo("acme/ok", {"config.json": "{}", "../../outside.txt": "gotcha"})
    api = HfApi(endpoint=loopback_hub.endpoint)
    assert {m.id for m in api.list_models()} == {repo_id, "acme/ok"}  # the id arrives as it is on the Hub
    assert "../../outside.txt" in api.list_repo_files("acme/ok")
    with pytest.raises(ValueError, match=r"'\.\.' path segment"):  # the client refuses the name before writing
        snapshot_download("acme/ok")


def test_a_deleted_repo_can_stay_listed(loopback_hub: LoopbackHub) -> None:
    _add(loopback_hub, "acme/gone")
    loopback_hub.delete_repo("acme/gone", keep_listed=True)
    api = HfApi(endpoint=loopback_hub.endpoint)
    assert [m.id for m in api.list_models()] == ["acme/gone"]
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme/gone")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/gone", "config.json")


def test_stall_after_applies_a_write_and_answers_late(loopback_hub: LoopbackHub) -> None:
    import httpx2
    from huggingface_hub.utils import get_session

    loopback_hub.faults.add("stall_after", match=r"POST /api/collections\?", stall_s=2.0, times=1)
    api = HfApi(endpoint=loopback_hub.endpoint, token=loopback_hub.token)
    session = get_session()
    own, session.timeout = session.timeout, httpx2.Timeout(0.5)
    try:
        with pytest.raises(httpx2.ReadTimeout):
            api.create_collection("Late", namespace=DEFAULT_USER)
    finally:
        session.timeout = own
    assert [c["title"] for c in loopback_hub.collections.values()] == ["Late"]  # applied though never answered
