"""Embed every string of the bundled index's PTM tokens with the default text encoder and ship the result.

    python scripts/build_text_embeddings.py

writes ``hf_spider/data/text_embeddings/<encoder>.npz``, which :class:`hf_spider.tokens.ptm.TextEmbedder` reads
before the user's cache, so a first ``hf-spider rank`` on the bundled pool does not embed ~2,000 label names.
Re-run it after changing the bundled index or the default text encoder.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hf_spider.hub.index import load_bundled_index
from hf_spider.tokens.ptm import TextEmbedder, ptm_tokens

DATA = Path(__file__).resolve().parents[1] / "hf_spider" / "data" / "text_embeddings"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        embedder = TextEmbedder(cache_dir=tmp)
        embedder.shipped_path = Path(tmp) / "none.npz"  # embed everything afresh, ignoring what is shipped
        ptm_tokens(load_bundled_index(), embedder=embedder)
        DATA.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(embedder.path, DATA / embedder.path.name)
    print(f"wrote {DATA / embedder.path.name}")


if __name__ == "__main__":
    main()
