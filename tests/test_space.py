"""The Gradio Space, served on 127.0.0.1: through ``gradio_client`` and end to end in headless Chromium."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
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
def expected_ids(app, reviews_csv) -> list[str]:
    """What the library itself ranks for the task: the Space must show exactly this."""
    return app._selector()(str(reviews_csv), top_k=TOP_K).model_ids


def test_gradio_client_ranks_an_uploaded_csv(app, space_url, reviews_csv, expected_ids) -> None:
    from gradio_client import Client, handle_file

    client = Client(space_url, verbose=False)
    table, _, _, status = client.predict(
        app.SOURCES[1], "", handle_file(str(reviews_csv)), "", "text", "bundled", TOP_K, 0, 0, api_name="/rank"
    )
    assert table["headers"] == app.TABLE_COLUMNS
    assert [row[1] for row in table["data"]] == expected_ids
    assert [row[0] for row in table["data"]] == list(range(1, TOP_K + 1))
    assert "reviews.csv" in status


def test_gradio_client_shows_a_clear_error_for_a_file_that_is_not_a_dataset(app, space_url, tmp_path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.zip"
    notes.write_text("not a zip")
    client = Client(space_url, verbose=False)
    with pytest.raises(AppError, match="not a readable zip"):
        client.predict(app.SOURCES[1], "", handle_file(str(notes)), "", "text", "bundled", 3, 0, 0, api_name="/rank")


def test_zip_of_an_image_folder_is_unpacked_to_its_root(app, tmp_path) -> None:
    import zipfile

    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("pets/cat/0.png", b"x")
        z.writestr("pets/dog/0.png", b"x")
    root = Path(app._unpacked(archive))
    assert root.name == "pets" and sorted(p.name for p in root.iterdir()) == ["cat", "dog"]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
def test_browser_uploads_a_dataset_and_sees_the_ranked_table(space_url, reviews_csv, expected_ids) -> None:
    from playwright.sync_api import expect, sync_playwright

    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(space_url)
            page.locator("input[type=file]").first.set_input_files(str(reviews_csv))
            expect(page.get_by_text("reviews.csv").first).to_be_visible(timeout=30_000)
            page.locator("#rank-button").click()
            table = page.locator("#shortlist")
            expect(table).to_contain_text(expected_ids[0], timeout=60_000)
            for model_id in expected_ids:
                expect(table).to_contain_text(model_id)
            expect(page.locator("#status")).to_contain_text("reviews.csv")
            page.screenshot(path=str(out / "space_ranked.png"), full_page=True)
        finally:
            browser.close()
    assert (out / "space_ranked.png").stat().st_size > 0
