"""Pushing a folder to a Hub model repo so that a retry can never make a second, empty commit.

``huggingface_hub`` leaves the commit POST of ``create_commit`` unretried, and the pipelined ``upload_folder`` (used
when ``hf_xet`` is installed, the default) retries it blindly: when the Hub applied a commit but its answer was lost,
the retry commits the same content again (``HUB_CLIENT_NOTES.md``). Here each try first reads the remote head with
file hashes and commits only the files that differ, on top of that head (``parent_commit``). A replayed try after a
lost answer therefore finds nothing to commit; a try racing another writer is refused by the Hub (412) and tried
again from the new head. :func:`push_model` is ``PyTorchModelHubMixin.push_to_hub`` built on it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HubPushError
from . import retry

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoSibling

logger = logging.getLogger(__name__)

#: Retried here beside :func:`~hf_spider.hub.retry.is_transient`: the head moved between reading and committing.
_HEAD_MOVED = 412


def check_can_push(flag: str) -> None:
    """Refuse a push a command would make after its work (``flag``: ``--push-to-hub``, ``--push-collection``) before
    that work: offline (``HF_HUB_OFFLINE``), or with no token (``HF_TOKEN`` or ``hf auth login``) a write needs. What
    the Hub then says (no write access, a missing namespace) can only be known by pushing.

    Raises:
        HubPushError: offline, or no token.
    """
    from huggingface_hub import constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise HubPushError(f"{flag} cannot push while HF_HUB_OFFLINE is set; unset it, or leave out {flag}")
    if get_token() is None:
        raise HubPushError(
            f"{flag} needs a Hub write token and none is found; run `hf auth login` or set HF_TOKEN, or leave out "
            f"{flag}"
        )


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload folder using hf-spider",
    revision: str | None = None,
    policy: retry.RetryPolicy | None = None,
    repo_type: str | None = None,
) -> str:
    """Make ``repo_id`` hold every file of ``folder`` (other remote files are kept), in at most one new commit.

    Args:
        folder: the files to push, paths relative to it as in the repo.
        repo_id: the model repo; created (``exist_ok``) if missing.
        token: a write token (default: the locally saved one). Never logged.
        private: visibility of a repo this call creates.
        commit_message: message of the commit, when one is needed.
        revision: the branch (default ``main``).
        policy: retries and request timeout (default :data:`hf_spider.hub.retry.WRITE_POLICY`).
        repo_type: ``"dataset"`` for a dataset repo (a crawled index, ``hf-spider crawl --push-to-hub``); default a
            model repo.

    Returns:
        The URL of the commit that holds the files: the new one, or the head when nothing differed.

    Raises:
        HubPushError: no write access, or a failure that outlasted the retries (with the server's reason).
    """
    from huggingface_hub import HfApi

    policy = policy or retry.WRITE_POLICY
    api = HfApi(token=token)
    files = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
    with retry.session_timeout(policy.timeout):
        try:
            repo_id = retry.call_with_retries(
                lambda: api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type).repo_id,
                what=f"create {repo_id}",
                policy=policy,
            )
            return retry.call_with_retries(
                lambda: _commit_changes(api, repo_id, Path(folder), files, commit_message, revision, repo_type),
                what=f"commit to {repo_id}",
                policy=policy,
                transient=lambda exc: retry.is_transient(exc) or _status(exc) == _HEAD_MOVED,
            )
        except Exception as exc:
            raise _push_error(repo_id, exc) from exc


def push_model(model: Any, repo_id: str, **kwargs: Any) -> str:
    """``PyTorchModelHubMixin.push_to_hub`` through :func:`push_folder`: saved to a temporary folder, then pushed.

    Takes the mixin's ``config``, ``model_card_kwargs``, ``commit_message``, ``private``, ``token`` and ``branch``.
    """
    from huggingface_hub.utils import SoftTemporaryDirectory

    save = {k: kwargs.pop(k) for k in ("config", "model_card_kwargs") if k in kwargs}
    if "branch" in kwargs:
        kwargs["revision"] = kwargs.pop("branch")
    kwargs.setdefault("commit_message", "Push model using huggingface_hub.")
    with SoftTemporaryDirectory() as tmp:
        model.save_pretrained(tmp, **save)
        return push_folder(tmp, repo_id, **kwargs)


def _commit_changes(
    api: HfApi,
    repo_id: str,
    folder: Path,
    files: list[str],
    message: str,
    revision: str | None,
    repo_type: str | None = None,
) -> str:
    """One try: read the head with file hashes, commit on it the files that differ; the URL of the commit."""
    from huggingface_hub import CommitOperationAdd

    head = api.repo_info(repo_id, revision=revision, files_metadata=True, repo_type=repo_type)
    remote = {s.rfilename: s for s in getattr(head, "siblings", None) or []}  # model and dataset infos have them
    changed = [f for f in files if not _same_content(folder / f, remote.get(f))]
    if not changed:
        logger.info("%s already holds these %d files at %s; nothing to commit", repo_id, len(files), head.sha)
        prefix = "datasets/" if repo_type == "dataset" else ""
        return f"{api.endpoint}/{prefix}{repo_id}/commit/{head.sha}"
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in changed]
    commit = api.create_commit(
        repo_id, operations, commit_message=message, parent_commit=head.sha, revision=revision, repo_type=repo_type
    )
    logger.info("pushed %d changed file(s) to %s", len(changed), commit.commit_url)
    return str(commit.commit_url)


def _same_content(path: Path, remote: RepoSibling | None) -> bool:
    """Whether the remote file holds ``path``'s bytes: its LFS sha256, or its git blob id for a regular file."""
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    if remote is None:
        return False
    if remote.lfs is not None:
        with path.open("rb") as f:
            return sha_fileobj(f).hex() == remote.lfs.sha256
    return remote.blob_id == git_hash(path.read_bytes())


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _push_error(repo_id: str, exc: Exception) -> HubPushError:
    reason = retry.describe(exc)
    if _status(exc) in (401, 403):
        return HubPushError(f"the token may not write to '{repo_id}' ({reason}); pass a write token of its owner")
    return HubPushError(
        f"push to '{repo_id}' failed ({reason}); check the Hub status and push again (files already there are not "
        "sent again)"
    )
