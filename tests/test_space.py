"""The Gradio Space, served on 127.0.0.1: through ``gradio_client`` and end to end in headless Chromium.

The browser tests find Chromium the way ``.ci/run`` installs it (Debian's ``chromium`` package, on ``PATH``; or
``HF_SPIDER_CHROMIUM``) and keep a screenshot of each ranked page in ``test-output/`` (CI's artefacts). Without a
browser they are skipped with the command that installs one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output"
CHROMIUM = os.environ.get("HF_SPIDER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH: `apt-get install chromium` (as .ci/run does) or set HF_SPIDER_CHROMIUM",
)
TOP_K = 5


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("space_app", ROOT / "spaces_demo" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def space_url(app):
    _, url, _ = app.demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield url
    app.demo.close()


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "reviews.csv"
    texts = [f"the film was {w} {i}" for i, w in enumerate(["great", "awful", "fine"] * 8)]
    pd.DataFrame({"text": texts, "label": ["pos", "neg", "neutral"] * 8}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def pets_zip(tmp_path_factory) -> Path:
    """A zipped image folder, one sub-folder per class, as a user would zip it (the folder itself at the root)."""
    folder = tmp_path_factory.mktemp("space")
    archive = folder / "pets.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as z:
        for label in ("cat", "dog", "bird"):
            for i in range(3):
                image = folder / f"{label}{i}.png"
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(image)
                z.write(image, f"pets/{label}/{i}.png")
    return archive


def expected(app, task, **options) -> list[str]:
    """What the library itself ranks for the task: the Space must show exactly this."""
    return app._selector()(task, top_k=TOP_K, **options).model_ids


def predict(space_url, *args):
    from gradio_client import Client

    return Client(space_url, verbose=False).predict(*args, api_name="/rank")


def test_gradio_client_ranks_an_uploaded_csv(app, space_url, reviews_csv) -> None:
    from gradio_client import handle_file

    table, _, _, status = predict(space_url, "", handle_file(str(reviews_csv)), "", None, "bundled", TOP_K, 0, 0)
    assert table["headers"] == ["rank", "model", table["headers"][2], "params", "notes"]
    assert [row[1] for row in table["data"]] == expected(app, str(reviews_csv))
    assert [row[0] for row in table["data"]] == [str(i) for i in range(1, TOP_K + 1)]
    assert all(row[3].endswith(("K", "M", "B")) for row in table["data"])  # 229.8M, never 229799953
    assert "reviews.csv" in status and "not pinned" in status


def test_the_task_comes_from_the_one_field_filled_in(app) -> None:
    import gradio as gr

    assert app.task_input("", None, "cat, dog,bird", "image") == {
        "labels": ["cat", "dog", "bird"],
        "modality": "image",
        "name": "labels",
    }
    assert app.task_input(" rotten_tomatoes ", None, "", None) == "rotten_tomatoes"
    for args, message in (
        (("", None, "", None), "describe the task"),
        (("rotten_tomatoes", None, "cat, dog", "image"), "fill in only one of Hub dataset id, label names"),
        (("", None, "cat, dog", None), "pick the modality"),  # never assumed: text models for an image task
    ):
        with pytest.raises(gr.Error, match=message):
            app.task_input(*args)


def test_gradio_client_shows_a_clear_error_for_a_file_that_is_not_a_dataset(space_url, tmp_path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.zip"
    notes.write_text("not a zip")
    with pytest.raises(AppError, match="not a readable zip"):
        predict(space_url, "", handle_file(str(notes)), "", None, "bundled", 3, 0, 0)


def test_zip_of_an_image_folder_is_unpacked_to_its_root(app, tmp_path) -> None:
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("pets/cat/0.png", b"x")
        z.writestr("pets/dog/0.png", b"x")
    root = Path(app.unpacked(archive))
    assert root.name == "pets" and sorted(p.name for p in root.iterdir()) == ["cat", "dog"]
    flat = tmp_path / "flat.zip"  # classes at the zip's root: the task is named after the zip
    with zipfile.ZipFile(flat, "w") as z:
        z.writestr("cat/0.png", b"x")
        z.writestr("dog/0.png", b"x")
    assert Path(app.unpacked(flat)).name == "flat"


def test_rerank_that_runs_nothing_says_why_and_how_to_fix_it(app, space_url, reviews_csv) -> None:
    """Offline, no candidate can be downloaded: the Space shows the one-line error naming the download command,
    instead of a table that claims an estimator ran."""
    from gradio_client import handle_file

    with pytest.raises(Exception, match=r"none of the 2 candidates could be re-ranked.*hf download"):
        predict(space_url, "", handle_file(str(reviews_csv)), "", None, "bundled", 3, 0, 2)


# ----------------------------------------------------------------------------------------------- headless Chromium


def _rank_in_browser(space_url, name: str, fill) -> None:
    """Open the Space, let ``fill(page)`` describe the task, press Rank, check the table and both plots, screenshot."""
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(space_url)
            ids = fill(page)
            page.locator("#rank-button").click()
            table = page.locator("#shortlist")
            expect(table).to_contain_text(ids[0], timeout=90_000)
            for model_id in ids:
                expect(table).to_contain_text(model_id)
            expect(page.locator("#status")).to_contain_text("Ranked")
            for plot in ("#scores-plot", "#size-plot"):
                expect(page.locator(f"{plot} img").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(SCREENSHOTS / f"space_{name}.png"), full_page=True)
        finally:
            browser.close()
    assert (SCREENSHOTS / f"space_{name}.png").stat().st_size > 0


def _upload(page, path: Path) -> None:
    """Upload ``path`` and wait until the file is listed (Gradio renders the name's stem and suffix apart)."""
    import re

    from playwright.sync_api import expect

    page.locator("#upload input[type=file]").set_input_files(str(path))
    listed = re.compile(rf"{re.escape(path.stem)}\s*{re.escape(path.suffix)}")
    expect(page.locator("#upload")).to_contain_text(listed, timeout=30_000)


@pytest.mark.browser
@needs_chromium
def test_browser_ranks_a_label_only_image_task(app, space_url) -> None:
    from playwright.sync_api import expect

    ids = expected(app, {"labels": ["cat", "dog", "bird"], "modality": "image"})

    def fill(page):
        expect(page.locator("#modality")).to_be_hidden()  # asked only once label names are typed
        page.locator("#labels textarea").fill("cat, dog, bird")
        expect(page.locator("#modality")).to_be_visible()
        page.locator("#modality").get_by_label("image").check()
        return ids

    _rank_in_browser(space_url, "labels", fill)


@pytest.mark.browser
@needs_chromium
def test_browser_ranks_a_zipped_image_folder(app, space_url, pets_zip) -> None:
    from playwright.sync_api import expect

    ids = expected(app, app.unpacked(pets_zip))

    def fill(page):
        _upload(page, pets_zip)
        expect(page.locator("#modality")).to_be_hidden()  # a dataset's modality is detected, not asked
        return ids

    _rank_in_browser(space_url, "zipped_image_folder", fill)


@pytest.mark.browser
@needs_chromium
def test_browser_ranks_an_uploaded_csv(app, space_url, reviews_csv) -> None:
    from playwright.sync_api import expect

    ids = expected(app, str(reviews_csv))

    def fill(page):
        _upload(page, reviews_csv)
        expect(page.locator("#rerank")).to_be_visible()  # samples to run models on: re-ranking is offered
        return ids

    _rank_in_browser(space_url, "csv", fill)


def test_a_space_build_installs_this_repository(tmp_path) -> None:
    """The assembled Space's requirements resolve hf-spider to the copy of this checkout, not to a PyPI release."""
    import subprocess
    import sys

    spec = importlib.util.spec_from_file_location("build_space", ROOT / "scripts" / "build_space.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    space = module.build_space(tmp_path / "space")
    assert (space / "app.py").read_bytes() == (ROOT / "spaces_demo" / "app.py").read_bytes()
    copied = space / module.SOURCE_DIR / "hf_spider" / "ranking.py"
    assert copied.read_bytes() == (ROOT / "hf_spider" / "ranking.py").read_bytes()
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation", "--quiet"]
    subprocess.run([*pip, "--report", str(report), "-r", "requirements.txt"], cwd=space, check=True, timeout=300)
    installs = {i["metadata"]["name"]: i for i in json.loads(report.read_text())["install"]}
    assert installs["hf-spider"]["download_info"]["url"] == (space / module.SOURCE_DIR).as_uri()
