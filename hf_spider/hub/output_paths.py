"""The one gate every file hf-spider writes goes through: a path check, then an atomic write.

An atomic write makes a temporary sibling and renames it over the target. A rename replaces whatever the name points
at, so without a check ``--output /dev/full`` (run as root) replaces the device with a regular file, and ``--output
out.json`` where ``out.json`` is a symlink to ``/proc/self/fd/1`` replaces the link and prints nothing. The rule
here: a target must be a regular file or a new path under a writable folder. A symbolic link, device, FIFO, socket
or folder is refused with one line naming the fix, and :func:`atomic_write` looks again right before the rename.
Commands check their outputs with :func:`check_output_file` / :func:`check_output_dir` before any work starts, so
a bad path fails in a second, not after the work. Writing *through* a symbolic link happens only when the caller
asks for it (``follow_symlinks=True``, the CLI's ``--follow-symlinks``).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import InvalidOutputError, OutputWriteError

#: What a non-regular file is called in messages, by its ``stat`` test.
_KINDS = (
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
)


def check_output_file(
    path: str | os.PathLike[str], *, what: str = "output", follow_symlinks: bool = False, offers_follow: bool = False
) -> None:
    """Refuse ``path`` unless an atomic write can safely create or replace it.

    Args:
        path: the file to write.
        what: how messages name the path (``"--output"``).
        follow_symlinks: accept a symbolic link, written through to what it points at (not a folder).
        offers_follow: the command also takes ``-`` (stdout) and ``--follow-symlinks`` (a shortlist's ``--output``):
            the message about a symbolic link offers them.

    Raises:
        InvalidOutputError: ``path`` is empty or ``-``, a folder, a device, FIFO or socket, a symbolic link (unless
            ``follow_symlinks``), read-only, or lies under a file or a folder that cannot be written.
    """
    text = os.fspath(path)
    if text in ("", "-"):
        shown = "an empty path" if not text else "'-' (stdout)"
        raise InvalidOutputError(f"{what} is {shown}, which cannot be written as a file here; pass a file path")
    path = Path(text)
    info = _status(path, what, "pass a path inside a folder")
    if info is None:
        return
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        if not follow_symlinks:
            fixes = "the real path, or - for stdout, or --follow-symlinks to write through the link"
            raise InvalidOutputError(
                f"{what} '{path}' is a symbolic link (to '{target}'), which an atomic write would replace; pass "
                + (fixes if offers_follow else "another path, or remove the link")
            )
        if target.is_dir():
            raise InvalidOutputError(f"{what} '{path}' links to the folder '{target}'; pass a file path inside it")
        return
    _check_regular(path, info, what)
    if not os.access(path, os.W_OK):
        raise InvalidOutputError(f"{what} '{path}' is read-only; make it writable or pass another path")
    _check_writable_folder(path, what)


def check_append_file(path: str | os.PathLike[str], *, what: str, fix: str) -> None:
    """Refuse ``path`` as a file written in place (appended to, cut back) unless it is a regular file or a new path
    under a writable folder: the same gate as :func:`check_output_file`, for a file that is not replaced atomically
    but opened where it is (a crawl journal), so a symbolic link would have the file it points at cut and appended
    to, a FIFO would block the writer for good and a device would take the data.

    Args:
        path: the file to append to.
        what: how messages name it (``"crawl journal"``).
        fix: what the messages end with (``"remove it or pass another --index"``).

    Raises:
        InvalidOutputError: ``path`` is a symbolic link, folder, device, FIFO or socket, read-only, or lies under a
            file or a folder that cannot be written.
    """
    path = Path(path)
    info = _status(path, what, fix)
    if info is None:
        return
    if stat.S_ISLNK(info.st_mode):
        raise InvalidOutputError(
            f"{what} '{path}' is a symbolic link (to '{os.path.realpath(path)}'), and writing it would change what "
            f"it points at; {fix}"
        )
    if not stat.S_ISREG(info.st_mode):
        raise InvalidOutputError(f"{what} '{path}' is a {_kind(info.st_mode)}, not a regular file; {fix}")
    if not os.access(path, os.W_OK):
        raise InvalidOutputError(f"{what} '{path}' is read-only; {fix}")


def check_output_dir(path: str | os.PathLike[str], *, what: str = "output folder") -> None:
    """Refuse ``path`` as a folder to write into unless it is a writable folder or can be made in one.

    A symbolic link to a folder is accepted (as ``cp`` and ``mkdir -p`` accept one); each file written inside it
    still passes :func:`check_output_file`.

    Raises:
        InvalidOutputError: ``path`` is empty, a file (or lies under one), or in a folder that cannot be written.
    """
    text = os.fspath(path)
    if not text:
        raise InvalidOutputError(f"{what} is an empty path; pass a folder")
    path = Path(text)
    try:
        exists = path.exists()
    except OSError:  # a symlink loop, a name too long: not a folder we can use
        exists = True
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise InvalidOutputError(f"{what} '{path}' is not writable; pass a folder you can write to")
        return
    if exists or path.is_symlink():
        raise InvalidOutputError(f"{what} '{path}' exists and is not a folder; pass a folder or a new path")
    try:
        path.lstat()
    except NotADirectoryError:
        raise InvalidOutputError(
            f"{what} '{path}' lies under '{_first_non_folder(path)}', which is a file, not a folder; pass another path"
        ) from None
    except FileNotFoundError:
        pass
    _check_writable_folder(path, what)


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", *, follow_symlinks: bool = False) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary sibling of ``path`` and move it over ``path`` only if the block finishes without error.

    ``path`` is checked first (:func:`check_output_file`) and again right before the rename, so only a regular file
    (or nothing) is ever replaced. With ``follow_symlinks``, a symbolic link is written through: what it points at is
    replaced atomically when it is a regular file or missing, and written in place otherwise (a terminal, a pipe).

    Raises:
        InvalidOutputError: see :func:`check_output_file`; also when the target changed into something else while
            the block ran (nothing is replaced then).
        OutputWriteError: the operating system refused the write (no space left, permissions); nothing is replaced.
    """
    check_output_file(path, follow_symlinks=follow_symlinks)
    path = Path(path)
    if follow_symlinks and path.is_symlink():
        path = Path(os.path.realpath(path))
        if path.exists() and not path.is_file():  # a terminal or a pipe: it cannot be replaced, only written to
            with _write_errors(path), open(path, mode, encoding=None if "b" in mode else "utf-8") as f:
                yield f
            return
    with _write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
    try:
        with _write_errors(path):
            with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            _check_replaceable(path)  # again: the target may have been swapped while the block ran
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    """An operating-system error while writing ``path`` as one :class:`OutputWriteError` naming the file."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as exc:
        if isinstance(exc, InvalidOutputError):
            raise
        reason = exc.strerror or str(exc)
        raise OutputWriteError(
            f"could not write '{path}' ({reason}); nothing was replaced: free some space, fix the permissions or "
            "write elsewhere"
        ) from exc


def _check_replaceable(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise InvalidOutputError(f"'{path}' became a symbolic link while it was being written; nothing was replaced")
    _check_regular(path, info, "output")


def _check_regular(path: Path, info: os.stat_result, what: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise InvalidOutputError(f"{what} '{path}' is a folder; pass a file path, e.g. '{path / 'out'}'")
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise InvalidOutputError(
                f"{what} '{path}' is a {kind}, not a regular file, and an atomic write would replace it; pass a "
                "file path, or - for stdout"
            )


def _status(path: Path, what: str, fix: str) -> os.stat_result | None:
    """``path``'s own status (a link is not followed), or ``None`` for a new path under a folder hf-spider can write.

    Raises:
        InvalidOutputError: ``path`` lies under a file, or its folder cannot be written.
    """
    try:
        return path.lstat()
    except FileNotFoundError:
        _check_writable_folder(path, what)
        return None
    except NotADirectoryError:
        raise InvalidOutputError(
            f"{what} '{path}' lies under '{_first_non_folder(path)}', which is a file, not a folder; {fix}"
        ) from None


def _kind(mode: int) -> str:
    """What a file that is not regular is, for a message (``"FIFO (named pipe)"``)."""
    if stat.S_ISDIR(mode):
        return "folder"
    return next((kind for test, kind in _KINDS if test(mode)), "special file")


def _check_writable_folder(path: Path, what: str) -> None:
    """The nearest existing folder above ``path`` must be a folder hf-spider can create files in."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InvalidOutputError(
            f"{what} '{path}' lies under '{folder}', which is a file, not a folder; pass a path inside a folder"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidOutputError(f"{what} '{path}': folder '{folder}' is not writable; pass a path you can write to")


def _first_non_folder(path: Path) -> Path:
    """The first ancestor of ``path`` that exists and is not a folder (why ``lstat`` said "not a directory")."""
    for ancestor in reversed(path.absolute().parents):
        if ancestor.exists() and not ancestor.is_dir():
            return ancestor
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
