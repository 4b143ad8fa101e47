"""Assemble the Hugging Face Space from this repository: the app, its card, and this repository's hf-spider.

    python scripts/build_space.py OUT
    hf upload <user>/hf-spider OUT . --repo-type space     # the release step: push what was assembled

writes ``OUT/app.py``, ``OUT/README.md`` (the Space card), ``OUT/requirements.txt`` and ``OUT/examples/`` (the
files the examples upload) from ``spaces_demo/``; ``OUT/img/`` with the screenshots the card shows (in this
repository they live in ``docs/img/``, and the card's links are rewritten to the copies: a Space has no ``../``); and
``OUT/hf-spider-src/`` (``pyproject.toml``, ``README.md`` and the ``hf_spider`` package of this checkout), which
``requirements.txt`` installs by path. So a Space build installs exactly the hf-spider it was assembled from, never a
release that happens to carry the same version number.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE_FILES = ("app.py", "README.md", "requirements.txt")
#: The Space's folders, copied whole.
SPACE_FOLDERS = ("examples",)
#: Where the card's screenshots are in this repository, and where the Space keeps them.
SCREENSHOTS, SPACE_IMAGES = "../docs/img/", "img/"
#: Where ``requirements.txt`` expects this repository's source, relative to the Space's root.
SOURCE_DIR = "hf-spider-src"


def build_space(out: Path) -> Path:
    """Write the Space's files into ``out`` (replacing an earlier build there); returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in SPACE_FILES:
        shutil.copyfile(ROOT / "spaces_demo" / name, out / name)
    card = (out / "README.md").read_text(encoding="utf-8")
    (out / SPACE_IMAGES).mkdir(exist_ok=True)
    for image in sorted(set(re.findall(re.escape(SCREENSHOTS) + r"([\w.-]+\.png)", card))):
        shutil.copyfile(ROOT / "docs" / "img" / image, out / SPACE_IMAGES / image)
    (out / "README.md").write_text(card.replace(SCREENSHOTS, SPACE_IMAGES), encoding="utf-8")
    for name in SPACE_FOLDERS:
        shutil.copytree(ROOT / "spaces_demo" / name, out / name, dirs_exist_ok=True)
    source = out / SOURCE_DIR
    if source.exists():
        shutil.rmtree(source)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    shutil.copytree(ROOT / "hf_spider", source / "hf_spider", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to assemble the Space in")
    print(f"assembled the Space in {build_space(parser.parse_args().out)}")


if __name__ == "__main__":
    main()
