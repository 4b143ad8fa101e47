"""Typed errors of hf_spider.

Modelled on ``huggingface_hub.errors``: every error derives from :class:`HfSpiderError` *and* from the builtin that
describes it best, so callers can catch either. Each message names the problem and ends with the fix.
"""

from __future__ import annotations


class HfSpiderError(Exception):
    """Base class of every error raised on purpose by hf_spider."""


class InvalidDatasetError(HfSpiderError, ValueError):
    """The task's dataset cannot be used as given (missing path, unknown layout, no label column, one class, ...)."""


class InvalidIndexError(HfSpiderError, ValueError):
    """A model index file is unreadable or holds a row that is not a valid :class:`ModelRecord`."""


class UnknownCandidateError(HfSpiderError, KeyError):
    """A candidate model id was asked for that the candidate pool does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class CandidateLoadError(HfSpiderError, OSError):
    """A candidate model could not be loaded or run; carries the model id and the reason."""

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"candidate '{model_id}' could not be used: {reason}")
        self.model_id = model_id
        self.reason = reason


class EstimatorInputError(HfSpiderError, ValueError):
    """Features, labels or probabilities given to a transferability estimator are malformed."""


class OfflineCacheMissError(HfSpiderError, FileNotFoundError):
    """Offline mode is on and what was asked for is neither in the index nor in the local cache."""


class ScorerConfigError(HfSpiderError, ValueError):
    """Tokens given to a scorer do not match the feature schema it was trained with."""


class InvalidEncoderError(HfSpiderError, ValueError):
    """A repo given as the general image or text encoder of task tokens cannot serve as one."""


class CollectionPushError(HfSpiderError, OSError):
    """A shortlist could not be pushed to a Hub collection (no write access, title taken, stopped half way, ...).

    ``url`` is the collection's address when it exists already, so a half-done push can be looked at and resumed.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class HubCrawlError(HfSpiderError, OSError):
    """The Hub listing itself failed for good (not one repo: those are recorded per model and the crawl goes on)."""


class InvalidRecordsError(HfSpiderError, ValueError):
    """A meta-training records folder (or Hub dataset repo) is missing, unreadable, or was built with other settings."""
