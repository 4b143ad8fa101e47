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


class InvalidRecordsError(InvalidIndexError):
    """Fine-tuning records that cannot be used as given: an accuracy out of range, a repeated (model, target) pair, a
    target with too few models, a model or label names nobody knows, a meta-training records folder (or Hub dataset
    repo) that is missing, unreadable or was built with other settings."""


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


class FusionInputError(HfSpiderError, ValueError):
    """Stage-one scores, estimator values, evidence or confidences given to :func:`hf_spider.rerank.fuse` are
    malformed (lengths that differ, a non-number, a stage-one score that is not finite)."""


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


class HubPushError(HfSpiderError, OSError):
    """Files could not be pushed to a Hub repo (no write access, or a failure that outlasted the retries)."""


class HubCrawlError(HfSpiderError, OSError):
    """The Hub listing itself failed for good (not one repo: those are recorded per model and the crawl goes on)."""


class InvalidOutputError(HfSpiderError, ValueError):
    """Where or how a result should be written is contradictory or unsafe (a suffix that names another format, ...)."""


class OutputWriteError(HfSpiderError, OSError):
    """The operating system refused to write a result (no space left, permissions); the target was left as it was."""


class InvalidShortlistError(HfSpiderError, ValueError):
    """A shortlist given as input (``rerank --shortlist``) is not one that ``hf-spider rank --format json`` wrote."""


class RerankBudgetError(HfSpiderError, ValueError):
    """A re-ranking budget of forward passes (``--max-forward-passes``) too small for even one candidate."""


class NothingRerankedError(HfSpiderError, RuntimeError):
    """Not one candidate of a re-ranking could be run; ``failures`` maps each model id to why.

    The message is one line: the common cause and its fix when every candidate failed the same way (offline without
    the weights in the local cache names the ``hf download`` command that fills it), else the first failure.
    """

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        super().__init__(self._message())

    @property
    def offline(self) -> bool:
        """Whether every candidate failed only because offline mode found its weights missing from the local cache
        (a front end then says the Hub cannot be reached, rather than the command-line fix the message names)."""
        return bool(self.failures) and all(OFFLINE_CACHE_MISS in reason for reason in self.failures.values())

    def _message(self) -> str:
        n = len(self.failures)
        if n == 0:
            return "no candidate was left to re-rank; pass a shortlist with candidates that have no error"
        ids = list(self.failures)
        if self.offline:
            more = f" (and likewise for {', '.join(ids[1:4])}{', ...' if n > 4 else ''})" if n > 1 else ""
            return (
                f"none of the {n} candidates could be re-ranked: HF_HUB_OFFLINE is set and their weights are not in "
                f"the local cache; fill it with `hf download {ids[0]}`{more} while online, or unset HF_HUB_OFFLINE"
            )
        first = ids[0]
        rest = f"; {n - 1} more failed, rerun with --verbose to see why" if n > 1 else ""
        return f"none of the {n} candidates could be re-ranked: '{first}': {self.failures[first]}{rest}"


#: Marker in a candidate's failure reason when offline mode found its files missing from the local cache.
OFFLINE_CACHE_MISS = "not in the local cache"
