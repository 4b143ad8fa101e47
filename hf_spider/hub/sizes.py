"""The sizes of Hub files, asked before they are downloaded: ``hf_hub_download`` and ``snapshot_download`` take
whatever size a repo holds, so a hostile or mistaken repo's 50 GB file would be on disk before any check of ours saw
it. The one implementation behind the scorer's files (:func:`hf_spider.scorer.checks.check_hub_sizes`), the pushed
candidate index (:func:`hf_spider.hub.live.read_dataset_index`) and a records repo
(:func:`hf_spider.metarecords.hub.load_meta_records`); each caller keeps its own caps and words its own refusal.

Rules shared by all of them: nothing is asked offline (``HF_HUB_OFFLINE``) or with ``local_files_only``; one request
(or one paginated listing) per load, retried on a transient failure and bounded in time (:data:`HUB_SIZES_POLICY`);
a Hub that cannot be reached past the retries is a ``LocalEntryNotFoundError``, what the download itself raises then,
so callers word it as they word the download's; other Hub errors (repo, revision not found, gated) pass unchanged.
An LFS file's size is its object's, the bytes its download takes, not its pointer's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from . import retry
from .retry import RetryPolicy

T = TypeVar("T")

#: How a request for sizes is retried: as ``hf_hub_download`` retries a file's failed ``HEAD`` (5 retries, waits
#: doubling from 1 s up to 8 s, ``http_backoff``'s defaults), each try bounded to the 10 s of its first ``HEAD``.
HUB_SIZES_POLICY = RetryPolicy(max_retries=5, backoff=1.0, max_backoff=8.0, timeout=10.0)


class _SizeRequest(NamedTuple):
    """What one load has asked the Hub (see :func:`one_size_request`)."""

    repo: tuple[str, str, str | None]  # repo type, repo id and revision
    filenames: tuple[str, ...]  # every file the load may download
    sizes: dict[str, int | None]  # the answers so far: size, or None for a file the repo lacks


_size_request: ContextVar[_SizeRequest | None] = ContextVar("hf_spider_hub_size_request", default=None)


@contextlib.contextmanager
def one_size_request(
    repo_id: str, revision: str | None, filenames: Iterable[str], *, repo_type: str = "model"
) -> Iterator[None]:
    """Make one Hub request for the sizes of ``filenames`` of ``repo_id`` at ``revision`` while the block loads them:
    the first :func:`download_sizes` in the block asks for all of them that are not in the cache, and later ones read
    its answer (a scorer and the task-aware model beside it are two loaders that would otherwise ask one each)."""
    token = _size_request.set(_SizeRequest((repo_type, repo_id, revision), tuple(filenames), {}))
    try:
        yield
    finally:
        _size_request.reset(token)


def download_sizes(
    repo_id: str,
    filenames: Sequence[str],
    *,
    what: str,
    repo_type: str = "model",
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> dict[str, int | None]:
    """The size of each of ``filenames`` that ``hf_hub_download`` would download, ``None`` for one the repo does not
    hold as a file; a file it would not download is left out: every one offline (``HF_HUB_OFFLINE``) or with
    ``local_files_only``, and one the cache holds at ``revision`` (``try_to_load_from_cache``, which also knows a file
    the repo lacks) unless ``force_download``. A cached branch is the commit it named when it was fetched: if the
    branch has moved on since, ``hf_hub_download`` fetches its new files without asking here (pin a commit to rule
    that out).

    Asked in one ``HfApi.get_paths_info`` request, or none: inside :func:`one_size_request`, the block's other files
    are asked with these, and files already answered are not asked again.

    Args:
        repo_id: the repo; ``repo_type``, ``revision``, ``token``, ``cache_dir``, ``force_download`` and
            ``local_files_only`` as the caller's ``hf_hub_download`` is given them.
        filenames: the files about to be downloaded.
        what: what is asked, for the retries' log lines (``"the sizes of ORG/NAME's scorer files"``).

    Raises:
        huggingface_hub's errors, as ``hf_hub_download`` would raise them: ``RepositoryNotFoundError``,
            ``GatedRepoError``, ``RevisionNotFoundError``, and ``LocalEntryNotFoundError`` when the Hub cannot be
            reached.
    """
    from huggingface_hub import HfApi, constants

    if local_files_only or constants.is_offline_mode():
        return {}
    shared = _size_request.get()
    if shared is not None and shared.repo != (repo_type, repo_id, revision):
        shared = None
    sizes = shared.sizes if shared is not None else {}

    def to_ask(names: Iterable[str]) -> list[str]:
        return [
            n
            for n in names
            if n not in sizes and (force_download or not _cached(repo_id, n, repo_type, revision, cache_dir))
        ]

    asked = to_ask(filenames)
    if asked:
        others = to_ask(n for n in shared.filenames if n not in asked) if shared is not None else []
        names = [*asked, *others]

        def ask() -> list[Any]:
            return HfApi().get_paths_info(repo_id, names, revision=revision, repo_type=repo_type, token=token)

        held = _file_sizes(_ask(ask, what))
        sizes.update({name: held.get(name) for name in names})
    return {name: sizes[name] for name in filenames if name in sizes}


def listed_sizes(
    repo_id: str,
    allow_patterns: Sequence[str],
    *,
    what: str,
    repo_type: str = "model",
    revision: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> dict[str, int] | None:
    """The size of every file of ``repo_id`` at ``revision`` that ``snapshot_download(allow_patterns=...)`` would
    take (the same ``fnmatch`` filter), from one recursive ``HfApi.list_repo_tree`` listing (paginated; the whole
    listing is retried as one call); ``None`` offline or with ``local_files_only``, when nothing is asked.

    Raises:
        as :func:`download_sizes`.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.utils import filter_repo_objects

    if local_files_only or constants.is_offline_mode():
        return None

    def ask() -> list[Any]:
        listing = HfApi().list_repo_tree(repo_id, recursive=True, revision=revision, repo_type=repo_type, token=token)
        return list(listing)

    held = _file_sizes(_ask(ask, what))
    return {name: held[name] for name in filter_repo_objects(held, allow_patterns=list(allow_patterns))}


def _ask(call: Callable[[], T], what: str) -> T:
    """``call`` (one Hub request or listing) under :data:`HUB_SIZES_POLICY`.

    Raises:
        LocalEntryNotFoundError: the Hub could not be reached, or failed, past the retries (what a download raises
            then, when the cache does not hold the file).
    """
    from huggingface_hub.errors import LocalEntryNotFoundError

    policy = HUB_SIZES_POLICY
    try:
        with retry.session_timeout(policy.timeout):
            return retry.call_with_retries(call, what=what, policy=policy)
    except Exception as exc:
        if retry.is_transient(exc) or isinstance(exc, retry.RetriesStoppedError):
            raise LocalEntryNotFoundError(f"the Hub could not be reached ({retry.describe(exc)})") from exc
        raise


def _file_sizes(entries: Iterable[Any]) -> dict[str, int]:
    """The files among a listing's ``entries`` (folders left out), each with the bytes its download takes."""
    from huggingface_hub.hf_api import RepoFile

    return {e.path: e.lfs.size if e.lfs is not None else e.size for e in entries if isinstance(e, RepoFile)}


def _cached(
    repo_id: str, filename: str, repo_type: str, revision: str | None, cache_dir: str | os.PathLike[str] | None
) -> bool:
    """Whether ``hf_hub_download`` finds ``filename`` in the cache at ``revision``, or knows the repo lacks it."""
    from huggingface_hub import try_to_load_from_cache

    folder = None if cache_dir is None else Path(cache_dir)
    found = try_to_load_from_cache(repo_id, filename, cache_dir=folder, revision=revision, repo_type=repo_type)
    return found is not None
