"""Headless Chromium for the Space's browser tests and its screenshot script, found the way ``.ci/run`` installs it.

Debian's ``chromium`` package on ``PATH`` (or the executable ``HF_SPIDER_CHROMIUM`` names), driven by Playwright with
the flags a container needs (no sandbox, no GPU) and without the background traffic a browser makes on its own (the
tests run offline, and the screenshots must not wait on it).
"""

from __future__ import annotations

import os
import shutil

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: What the tests say when no browser is found.
INSTALL_HINT = "no Chromium on PATH: `apt-get install chromium` (as .ci/run does) or set HF_SPIDER_CHROMIUM"


def find_chromium() -> str | None:
    """The Chromium executable: ``HF_SPIDER_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on ``PATH``."""
    return os.environ.get("HF_SPIDER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
