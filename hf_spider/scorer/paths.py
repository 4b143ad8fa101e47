"""Where the scorer shipped inside the package lives (shared by the torch and the numpy scorer)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Folder of the scorer shipped inside the package.
DEFAULT_SCORER_DIR = "scorer"


def default_scorer_path() -> Path:
    """Where the embedded default scorer lives (``config.json`` + ``model.safetensors`` + ``README.md``)."""
    return Path(str(resources.files("hf_spider") / "data" / DEFAULT_SCORER_DIR))
