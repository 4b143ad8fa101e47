"""``python -m hf_spider.metarecords ...`` = ``hf-spider build-records ...``: what ``accelerate launch -m`` starts."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["build-records", *sys.argv[1:]]))
