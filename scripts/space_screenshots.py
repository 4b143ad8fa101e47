"""Screenshots of the Space as a new visitor sees it, for ``spaces_demo/README.md``: the first view, a result and an
error.

    python scripts/space_screenshots.py            # writes docs/img/space_{first_view,result,error}.png

Runs the Space on 127.0.0.1 offline (as the tests do) and drives it in headless Chromium (Debian's ``chromium``,
see :mod:`hf_spider.testing.browser`) at 1400 pixels wide: the first view before any run, the result of a click on
the label-names example, and the readable error of the Hub candidate pool offline (with its toast).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the error shot is the Hub pool offline; read at import by the client
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1400
#: Viewport heights of the shots: the form alone, and the form with a result. A viewport shot, not a full-page one,
#: so the toast (fixed to the viewport) is in the error shot.
SHORT_PAGE, LONG_PAGE = 820, 2150
#: The toast slides in and the status fades back from its pending look: wait for both before the shot.
SETTLE_MS = 1500
#: How long a ranking may take before the script gives up, in milliseconds.
RANK_TIMEOUT_MS = 120_000


def load_app() -> Any:
    """``spaces_demo/app.py`` as a module (it is a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location("space_app", ROOT / "spaces_demo" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def take_screenshots(out: Path) -> list[Path]:
    """Write the three screenshots into ``out``; returns their paths."""
    from playwright.sync_api import expect, sync_playwright

    from hf_spider.testing.browser import CHROMIUM_ARGS, INSTALL_HINT, find_chromium

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit(f"error: {INSTALL_HINT}")
    app = load_app()
    _, url, _ = app.demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    out.mkdir(parents=True, exist_ok=True)
    shots = [out / f"space_{name}.png" for name in ("first_view", "result", "error")]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
            page = browser.new_page(viewport={"width": WIDTH, "height": SHORT_PAGE})
            page.goto(url)
            expect(page.locator("#rank-button")).to_be_visible(timeout=30_000)
            expect(page.locator("#status")).to_contain_text("Results appear here")
            page.screenshot(path=str(shots[0]))

            page.get_by_text(app.EXAMPLE_LABELS[0], exact=True).click()
            expect(page.locator("#status")).to_contain_text("ranked for", timeout=RANK_TIMEOUT_MS)
            for plot in ("#scores-plot", "#size-plot"):
                expect(page.locator(f"{plot} img").first).to_be_visible(timeout=30_000)
            page.set_viewport_size({"width": WIDTH, "height": LONG_PAGE})
            page.screenshot(path=str(shots[1]))
            page.set_viewport_size({"width": WIDTH, "height": SHORT_PAGE})

            page.locator("#pool input").click()
            page.get_by_role("option", name=app.HUB_POOL).click()
            page.locator("#rank-button").click()
            expect(page.locator("#status")).to_contain_text("cannot be reached", timeout=RANK_TIMEOUT_MS)
            expect(page.get_by_text("cannot be reached").nth(1)).to_be_visible()  # the toast, beside the status
            page.wait_for_timeout(SETTLE_MS)
            page.screenshot(path=str(shots[2]))
            browser.close()
    finally:
        app.demo.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNGs")
    for path in take_screenshots(parser.parse_args().out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
