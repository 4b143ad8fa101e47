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
