"""The Gradio Space, served on 127.0.0.1: through ``gradio_client`` and end to end in headless Chromium.

The browser tests find Chromium the way ``.ci/run`` installs it (Debian's ``chromium`` package, on ``PATH``; or
``HF_SPIDER_CHROMIUM``), share one app server and one browser per module, and keep a screenshot of each page they
check in ``test-output/`` (CI's artefacts). Without a browser they are skipped with the command that installs one.
The Hub dataset example is served by the loopback Hub (a small stand-in under the example's id); everything else runs
offline, as the suite does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from hf_spider.testing.browser import CHROMIUM_ARGS, INSTALL_HINT, find_chromium

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output"
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=INSTALL_HINT)
TOP_K = 5
#: The form's settings after the task fields: pool, top k, max parameters (M), leave out flagged repos, re-rank.
BUNDLED = ("bundled", TOP_K, 0, False, 0)


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


def expected(app, task, top_k=TOP_K, **options) -> list[str]:
    """What the library itself ranks for the task: the Space must show exactly this."""
    return app._selector()(task, top_k=top_k, **options).model_ids


def predict(space_url, *args, description: str = "") -> dict[str, object]:
    """The Space's ``/rank`` answer to the form's values (the optional task description last), by output name."""
    from gradio_client import Client

    names = ("status", "table", "value_line", "notes", "scores", "sizes", "csv", "json")  # no layout blocks
    answer = Client(space_url, verbose=False).predict(*args, description, api_name="/rank")
    unwrapped = (v.get("value") if isinstance(v, dict) and v.get("__type__") == "update" else v for v in answer)
    return dict(zip(names, unwrapped, strict=True))


def test_gradio_client_ranks_an_uploaded_csv(app, space_url, reviews_csv) -> None:
    from gradio_client import handle_file

    answer = predict(space_url, "", handle_file(str(reviews_csv)), "", None, *BUNDLED)
    table = answer["table"]
    assert table["headers"][:4] == ["rank", "model", table["headers"][2], "params"] and table["headers"][-1] == "notes"
    ids = expected(app, str(reviews_csv))
    assert [row[1] for row in table["data"]] == [f"[{i}](https://huggingface.co/{i})" for i in ids]
    assert [row[0] for row in table["data"]] == [str(i) for i in range(1, TOP_K + 1)]
    assert all(row[3].endswith(("K", "M", "B")) for row in table["data"])  # 229.8M, never 229799953
    status = answer["status"]
    assert f"{TOP_K} of " in status and f"text models** in the bundled pool of {app.bundled_pool_size():,}" in status
    assert "ranked for **reviews.csv**" in status and "not its samples" in status
    assert "candidates record a revision" in answer["notes"]
    assert "100 = best" in answer["value_line"]
    assert Path(answer["json"]).suffix == ".json" and json.loads(Path(answer["json"]).read_text())["entries"]


def test_flagged_repos_are_noted_or_left_out(space_url) -> None:
    """Under a 1M size cap the bundled image pool lists models of unknown size and test / random-weight repos: the
    notes say so, and the checkbox leaves them out (the rule is the library's: ``CandidateFilter``)."""
    from hf_spider.hub.placeholders import PLACEHOLDER_NOTE, looks_like_placeholder
    from hf_spider.ranking import load_candidates

    records = {r.repo_id: r for r in load_candidates("bundled")}
    task = ("", None, "cat, dog, bird", "image", "bundled", 10, 1)

    def listed(answer) -> dict[str, str]:
        """Each listed model's notes, by the id its link names."""
        rows = answer["table"]["data"]
        return {row[1].partition("(https://huggingface.co/")[2].rstrip(")"): row[-1] for row in rows}

    notes = listed(predict(space_url, *task, False, 0))
    flagged = {m for m in notes if records[m].num_parameters is None or looks_like_placeholder(records[m])}
    assert flagged  # the pool has such models under the cap, or this test says nothing
    for model_id, note in notes.items():
        assert ("size unknown" in note) == (records[model_id].num_parameters is None), model_id
        assert (PLACEHOLDER_NOTE in note) == looks_like_placeholder(records[model_id]), model_id
    answer = predict(space_url, *task, True, 0)
    kept = listed(answer)
    assert not kept.keys() & flagged
    if not kept:
        assert "No image candidate is left to rank after filtering" in answer["status"]


def test_the_task_comes_from_the_one_field_filled_in(app) -> None:
    import gradio as gr

    assert app.task_input("", None, "cat, dog,bird", "image") == {
        "labels": ["cat", "dog", "bird"],
        "modality": "image",
        "name": "cat, dog, bird",  # the task as the user gave it, in the status, the plots and the JSON
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

    notes = tmp_path / "notes.zip"
    notes.write_text("not a zip")
    answer = predict(space_url, "", handle_file(str(notes)), "", None, *BUNDLED)
    assert answer["status"] == "'notes.zip' is not a readable zip; upload a zip of an image folder."
    assert not answer["table"]["data"] and answer["csv"] is None


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
    one_class = tmp_path / "cats.zip"  # one folder of images is one class, not a wrapper to strip
    with zipfile.ZipFile(one_class, "w") as z:
        z.writestr("cats/0.png", b"x")
    assert Path(app.unpacked(one_class)).name == "cats" and (Path(app.unpacked(one_class)) / "cats").is_dir()
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(app.gr.Error, match=r"'empty\.zip' is empty; upload a zip of an image folder"):
        app.unpacked(empty)


def test_a_missing_label_column_names_a_fix_the_visitor_can_make(app) -> None:
    from hf_spider.errors import InvalidDatasetError

    error = InvalidDatasetError(
        "dataset 'x.csv' has no label column (columns: a, b); pass label_column= (--label-column)"
    )
    sentence = app.error_sentence(error)
    assert sentence.endswith("; name the column of classes 'label'.") and "label_column" not in sentence


def test_rerank_that_runs_nothing_says_why_for_a_visitor(app, space_url, reviews_csv) -> None:
    """Offline, no candidate's weights are cached: the library returns stage one with a note, and the Space says so in
    a visitor's words (no command to run) above the stage-one list, instead of claiming an estimator ran."""
    from gradio_client import handle_file

    answer = predict(space_url, "", handle_file(str(reviews_csv)), "", None, "bundled", 3, 0, False, 30)
    status = answer["status"]
    assert "You asked for a re-rank with forward passes, but this Space cannot reach the Hugging Face Hub" in status
    assert "`" not in status and "HF_HUB_OFFLINE" not in status and "re-ranked them by" not in status
    ids = expected(app, str(reviews_csv), top_k=3, rerank_budget=0)  # stage one
    assert [row[1] for row in answer["table"]["data"]] == [f"[{i}](https://huggingface.co/{i})" for i in ids]


def test_every_hub_error_is_one_plain_sentence(app) -> None:
    """The Hub's typed errors, raised directly (the Hub pool) or as the cause of the library's (a Hub dataset)."""
    import httpx2
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    from hf_spider.errors import InvalidDatasetError, OfflineCacheMissError

    def answered(status: int) -> httpx2.Response:
        return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/x"))

    def wrapped(cause: Exception) -> InvalidDatasetError:
        try:
            raise InvalidDatasetError("could not load Hub dataset 'acme/x'") from cause
        except InvalidDatasetError as exc:
            return exc

    cases = {
        OfflineModeIsEnabled("offline"): "cannot be reached from this Space, so the Hub candidate pool",
        OfflineCacheMissError("offline, no cached listing"): "cannot be reached from this Space, so the Hub candidate",
        HfHubHTTPError("slow down", response=answered(429)): "rate-limiting this Space, so the Hub candidate pool",
        wrapped(GatedRepoError("gated", response=answered(403))): "The dataset 'acme/x' is gated on the Hub",
        wrapped(RepositoryNotFoundError("missing", response=answered(404))): "does not know the dataset 'acme/x'",
        wrapped(HfHubHTTPError("down", response=answered(503))): "answered 503, so the dataset 'acme/x'",
    }
    for exc, start in cases.items():
        sentence = app.error_sentence(exc, dataset_id="acme/x")
        assert start in sentence and sentence.endswith(".") and sentence.count(". ") == 0, sentence


# ----------------------------------------------------------------------------------------------- headless Chromium


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        yield browser
        browser.close()


@pytest.fixture
def page(browser, space_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    page.goto(space_url)
    yield page
    page.close()


@pytest.fixture
def hub_dataset(loopback_hub, monkeypatch, tmp_path) -> str:
    """The Hub dataset example's id, served by the loopback Hub: a stand-in of a few film reviews, two classes."""
    import datasets

    repo_id = "cornell-movie-review-data/rotten_tomatoes"
    rows = "".join(f"a fine film {i},positive\na dull film {i},negative\n" for i in range(8))
    loopback_hub.add_repo(
        repo_id, {"README.md": "# stand-in\n", "train.csv": "text,label\n" + rows}, repo_type="dataset"
    )
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", loopback_hub.endpoint)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    return repo_id


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"space_{name}.png"), full_page=True)


def _shown_table(page) -> list[list[str]]:
    """The shortlist as the visitor sees it: the header and each row's cell texts."""
    header = page.locator("#shortlist [role=columnheader]").all_inner_texts()
    rows = page.locator("#shortlist [role=row]:not([aria-rowindex='1'])").all()  # a virtual list, not a <tbody>
    return [
        [t.strip() for t in header],
        *([t.strip() for t in row.locator("[role=gridcell]").all_inner_texts()] for row in rows),
    ]


@pytest.mark.browser
@needs_chromium
def test_browser_each_example_gives_a_result(app, page, hub_dataset) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text("Results appear here")  # the first view explains itself
    expect(page.locator("#shortlist")).to_be_hidden()
    tasks = [
        ("cat, dog, bird", {"labels": ["cat", "dog", "bird"], "modality": "image"}),
        (hub_dataset, hub_dataset),
        ("shapes.zip", app.unpacked(app.EXAMPLES_DIR / "shapes.zip")),
        ("reviews.csv", str(app.EXAMPLES_DIR / "reviews.csv")),
    ]
    assert len(tasks) == len(app.EXAMPLES)
    for label, (name, task) in zip(app.EXAMPLE_LABELS, tasks, strict=True):
        page.get_by_text(label, exact=True).click()
        expect(page.locator("#status")).to_contain_text(f"ranked for {name}", timeout=90_000)
        ids = expected(app, task, top_k=10)
        expect(page.locator("#shortlist [role=row] a")).to_have_count(len(ids))
        assert [row[1] for row in _shown_table(page)[1:]] == ids
    expect(page.locator("#scores-plot img").first).to_be_visible(timeout=30_000)
    _screenshot(page, "examples")


@pytest.mark.browser
@needs_chromium
def test_browser_shortlist_links_downloads_and_an_error_that_replaces_it(app, page) -> None:
    """A result: links to the Hub, a CSV that parses back to the table shown. Then the Hub pool, offline: one readable
    sentence replaces the status, the results are hidden, and no output shows a red "Error" badge."""
    from playwright.sync_api import expect

    page.locator("#labels textarea").fill("cat, dog, bird")
    page.locator("#modality").get_by_label("image").check()
    page.locator("#rank-button").click()
    expect(page.locator("#status")).to_contain_text("ranked for cat, dog, bird", timeout=90_000)
    # The status and the table are separate outputs: wait for every listed row (10, the form's default) to render.
    expect(page.locator("#shortlist [role=row] a")).to_have_count(10, timeout=30_000)
    shown = _shown_table(page)
    hrefs = page.locator("#shortlist [role=row] a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs == [f"https://huggingface.co/{row[1]}" for row in shown[1:]]
    with page.expect_download() as download:
        page.locator("#download-csv").click()
    csv = pd.read_csv(download.value.path(), dtype=str, keep_default_na=False)
    assert [list(csv.columns), *csv.values.tolist()] == shown
    _screenshot(page, "result")

    page.locator("#pool input").click()
    page.get_by_role("option", name=app.HUB_POOL).click()
    page.locator("#rank-button").click()
    status = page.locator("#status")
    expect(status).to_contain_text("cannot be reached from this Space", timeout=60_000)
    assert status.inner_text().strip() == (
        "The Hugging Face Hub cannot be reached from this Space, so the Hub candidate pool could not be loaded; "
        "choose the bundled pool."
    )
    for result in ("#shortlist", "#scores-plot", "#size-plot", "#download-csv"):
        expect(page.locator(result)).to_be_hidden()
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    _screenshot(page, "error")


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
    card = (space / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"\]\(([^)]+\.png)\)", card)
    assert images and all((space / image).is_file() for image in images)  # the card shows its screenshots
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation", "--quiet"]
    subprocess.run([*pip, "--report", str(report), "-r", "requirements.txt"], cwd=space, check=True, timeout=300)
    installs = {i["metadata"]["name"]: i for i in json.loads(report.read_text())["install"]}
    assert installs["hf-spider"]["download_info"]["url"] == (space / module.SOURCE_DIR).as_uri()
