"""The task's samples as each candidate's processor makes them, preprocessed once per processor configuration.

The key is the bytes of the processor files (:attr:`~.loading.LoadedCandidate.processor_key`), so candidates that
share a tokenizer or image processor share one pass; loading (:mod:`.loading`) does no preprocessing, so the next
candidate can load in a background thread while the current one runs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..errors import CandidateLoadError
from .checks import memory_reason
from .fetch import first_line
from .loading import LoadedCandidate, transformers_lib
from .options import ForwardOptions

#: Preprocessed sample sets kept at once (each distinct processor configuration has one).
_PREPARED_CACHE = 4
#: Share of the samples' tokens (special tokens aside) that a text candidate's tokenizer may map to its unknown token.
#: A tokenizer that fits the text gives a few per cent at most; one that knows only its special tokens (a repo without
#: tokenizer files: transformers then builds a 5-token BERT tokenizer) gives all of them, and the model would be
#: scored on the positions and lengths of the samples, not on a word of them.
UNKNOWN_TOKEN_LIMIT = 0.9


class PreparedInputs:
    """The samples, preprocessed once per distinct processor configuration and kept as CPU tensors in batches.

    Candidates whose processor files are byte-identical (every fine-tune of one base model, every repo of one timm
    family at one resolution) share one preprocessing pass. The last few configurations are kept.
    """

    def __init__(self, inputs: Sequence[Any], modality: str, options: ForwardOptions | None = None) -> None:
        self.inputs = list(inputs)
        self.modality = modality
        self.options = options or ForwardOptions()
        self._cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.seconds = 0.0
        self.configurations = 0  # distinct processor configurations preprocessed so far

    def batches(self, candidate: LoadedCandidate) -> list[dict[str, Any]]:
        """The batches for ``candidate``'s processor (loaded and run only on a new configuration).

        Raises:
            CandidateLoadError: its processor cannot be loaded or rejects the samples.
        """
        key = f"{candidate.processor_key}:{self._max_length(candidate)}"
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        start = time.perf_counter()
        processor = self._processor(candidate)
        size = self.options.batch_size
        try:
            out = [self._run(processor, candidate, self.inputs[b : b + size]) for b in range(0, len(self.inputs), size)]
        except Exception as exc:  # tokenizers and image processors raise many types on inputs they reject
            reason = memory_reason(exc) or f"its processor rejected the samples ({first_line(exc)})"
            raise CandidateLoadError(candidate.model_id, reason) from exc
        if self.modality == "text":
            _check_known_words(candidate.model_id, processor, out)
        self.seconds += time.perf_counter() - start
        self.configurations += 1
        self._cache[key] = out
        while len(self._cache) > _PREPARED_CACHE:
            self._cache.popitem(last=False)
        return out

    def _processor(self, candidate: LoadedCandidate) -> Any:
        transformers = transformers_lib()
        auto = transformers.AutoImageProcessor if self.modality == "image" else transformers.AutoTokenizer
        try:
            return auto.from_pretrained(candidate.folder, trust_remote_code=candidate.trust_remote_code)
        except Exception as exc:  # missing or broken processor files
            raise CandidateLoadError(
                candidate.model_id, f"its processor could not be loaded ({first_line(exc)})"
            ) from exc

    def _max_length(self, candidate: LoadedCandidate) -> int:
        limit = self.options.max_length
        if candidate.sentence is not None and candidate.sentence.max_seq_length:
            limit = min(limit, int(candidate.sentence.max_seq_length))
        return limit

    def _run(self, processor: Any, candidate: LoadedCandidate, chunk: Sequence[Any]) -> dict[str, Any]:
        if self.modality == "image":
            return dict(processor(images=[img.convert("RGB") for img in chunk], return_tensors="pt"))
        limit = min(self._max_length(candidate), getattr(processor, "model_max_length", None) or 10**9)
        return dict(processor(list(chunk), padding=True, truncation=True, max_length=limit, return_tensors="pt"))


def _check_known_words(model_id: str, tokenizer: Any, batches: Sequence[dict[str, Any]]) -> None:
    """Refuse a tokenizer that maps nearly all of the samples' tokens to its unknown token.

    Raises:
        CandidateLoadError: more than :data:`UNKNOWN_TOKEN_LIMIT` of the non-special tokens are the unknown token.
    """
    import torch

    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:  # byte-level tokenizers have no unknown token: every text is read
        return
    special = torch.tensor(sorted(set(getattr(tokenizer, "all_special_ids", ())) - {unk}), dtype=torch.long)
    words = unknown = 0
    for batch in batches:
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        real &= ~torch.isin(ids, special)
        words += int(real.sum())
        unknown += int((real & (ids == unk)).sum())
    if words and unknown > UNKNOWN_TOKEN_LIMIT * words:
        raise CandidateLoadError(
            model_id,
            f"its tokenizer reads {unknown} of the samples' {words} tokens as the unknown token "
            f"{tokenizer.unk_token!r} (it knows {len(tokenizer)} tokens: are its tokenizer files missing?): the model "
            "would read nothing of the text",
        )
