"""``python -m hf_spider.rerank ...`` = ``hf-spider rerank ...``, the form ``accelerate launch -m`` can start."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["rerank", *sys.argv[1:]]))
