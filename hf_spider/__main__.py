"""``python -m hf_spider`` runs the ``hf-spider`` command line."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line itself is imported: no traceback either
    sys.stderr.write("hf-spider: interrupted\n")
    sys.exit(130)

sys.exit(main())
