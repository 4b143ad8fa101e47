"""Shared fixtures. ``loopback_hub``: a Hugging Face Hub served on 127.0.0.1 that the real client talks to.

Usage: take ``loopback_hub`` as an argument. It is empty at the start of each test (one server per session), and for
the duration of the test the client's *default* endpoint points at it: ``HF_ENDPOINT`` is set and, because
``huggingface_hub.constants`` reads that variable at import, ``constants.ENDPOINT`` and the resolve-URL template are
patched too, so ``hf_hub_download``, ``snapshot_download``, ``from_pretrained`` and ``push_to_hub`` reach it without an
``endpoint=`` argument. ``HfApi(endpoint=loopback_hub.endpoint)`` works as well. Offline mode is switched off and the
HF cache moved to the test's ``tmp_path``. Writes need a token: pass ``token=loopback_hub.token`` or
``monkeypatch.setenv("HF_TOKEN", loopback_hub.token)``. Faults: ``loopback_hub.faults.add("429", match="resolve")``.
"""

from __future__ import annotations

import os

# Read by huggingface_hub at import: set before anything imports it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
# The suite never reaches huggingface.co; the `loopback_hub` fixture turns offline mode off for its own Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest

from hf_spider.testing import LoopbackHub


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """hf_spider's own cache (``HF_SPIDER_CACHE``: text embeddings, task tokens) in a folder of this test session.

    ``hf_spider.constants.CACHE_DIR`` is read once at import, and users of it import it at call time, so patching
    the attribute (and the variable, for subprocesses) redirects every cache write of the session.
    """
    from hf_spider import constants

    folder = tmp_path_factory.mktemp("hf-spider-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_SPIDER_CACHE", str(folder))
        patch.setattr(constants, "CACHE_DIR", folder)
        yield folder


@pytest.fixture(scope="session")
def _loopback_hub_server() -> Iterator[LoopbackHub]:
    with LoopbackHub() as hub:
        yield hub


@pytest.fixture
def loopback_hub(_loopback_hub_server: LoopbackHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> LoopbackHub:
    """An empty Hub on 127.0.0.1, set as the client's default endpoint for this test (see the module docstring)."""
    from huggingface_hub import constants

    hub = _loopback_hub_server
    hub.reset()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return hub


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Small matrices on a shared 2-core box: one intra-op thread avoids OpenMP oversubscription stalls (up to 100x).
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
