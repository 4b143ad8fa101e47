"""``python -m hf_spider`` runs the ``hf-spider`` command line."""

import sys

from .cli import main

sys.exit(main())
