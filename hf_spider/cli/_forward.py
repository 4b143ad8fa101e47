"""The options of every command that runs candidates (``rerank``, ``build-records``): declared and read in one place."""

from __future__ import annotations

import argparse
from typing import Any

from ._types import positive_int


def add_forward_arguments(group: Any) -> None:
    """``--batch-size``, ``--device-map``, ``--trust-remote-code`` and ``--allow-pickle`` on an argparse group."""
    group.add_argument("--batch-size", type=positive_int, default=32, help="samples per forward pass (default: 32)")
    group.add_argument("--device-map", help="e.g. 'auto' to spread a large candidate over the visible devices")
    group.add_argument("--trust-remote-code", action="store_true", help="run repo code of configs with auto_map")
    group.add_argument("--allow-pickle", action="store_true", help="load weights that exist only as pickle files")


def forward_options(args: argparse.Namespace) -> Any:
    """The :class:`~hf_spider.rerank.forward.ForwardOptions` those arguments (and ``--local-dir``) ask for."""
    from ..rerank.forward import ForwardOptions

    return ForwardOptions(
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
        batch_size=args.batch_size,
        device_map=args.device_map,
        local_dir=args.local_dir,
    )
