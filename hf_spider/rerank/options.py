"""How stage two fetches, trusts and runs its candidates: one frozen set of options every step of it reads.

The fetch (:mod:`.fetch`), the loading (:mod:`.loading`), the preprocessing (:mod:`.preprocess`), the forward pass
(:mod:`.forward`) and the process loop (:mod:`.distributed`) each read their part of :class:`ForwardOptions`; it has a
module of its own so that none of them imports another only for the options.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ForwardOptions:
    """How candidates are fetched, trusted and run.

    Args:
        trust_remote_code: run the repo's own code for configs with ``auto_map`` (off: such candidates are skipped).
        allow_pickle: load weights that exist only as pickle files (off: such candidates are skipped).
        batch_size: samples per forward pass.
        device_map: passed to ``from_pretrained`` (``"auto"`` spreads a large candidate over the visible devices);
            ``None`` puts the whole model on this process's device.
        local_dir: a folder holding candidates as ``<local_dir>/<repo_id>``, used instead of the Hub.
        token: Hub token for gated or private candidates (never logged).
        max_length: token cap for text models (the model's own limit applies when lower).
        prefetch: load the next candidate in a background thread while the current one runs (two models are then in
            memory at once; off when ``device_map`` is set, since that places weights on the devices directly).
        feature_cache: read and write the features of (revision, samples) in the feature cache
            (:mod:`hf_spider.rerank.cache`), so running a candidate on the same samples again runs no forward pass.
    """

    trust_remote_code: bool = False
    allow_pickle: bool = False
    batch_size: int = 32
    device_map: str | None = None
    local_dir: str | None = None
    token: str | bool | None = None
    max_length: int = 512
    prefetch: bool = True
    feature_cache: bool = True
