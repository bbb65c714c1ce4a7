"""Folders and files only this user can reach: checked folders, atomic 0600 writes, logs.

Theory of operation.  Every path ember keeps state under (the runtime folder
``$TMPDIR/ember-<uid>``, session folders, ``~/.ember``) is a folder that this
user owns and that grants nothing to group or others (0700).  A folder that
already exists is accepted only if it is a real folder (not a symlink), is
owned by this user and has no group/other bits: otherwise another local user
could have created it first and could read, swap or plant files in it, and
:class:`UnsafePathError` names the path, its owner and its mode.  Files are
written under a random temporary name opened with ``O_CREAT | O_EXCL |
O_NOFOLLOW`` (a planted symlink makes the open fail instead of being
followed), mode 0600, then renamed over the target (``rename`` replaces a
symlink at the target, never follows it).  Logs are opened with
``O_NOFOLLOW``, mode 0600, and refused when another user owns them.
"""

from __future__ import annotations

import os
import pwd
import secrets
import stat

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class UnsafePathError(PermissionError):
    """A folder or file ember would use is reachable by, or belongs to, another user."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            f"ember refuses to use {path}: it {problem}. Another local user could read "
            "or replace what ember keeps there (the cluster token, the cluster record, "
            "sockets). Remove it (or fix its owner and mode) and try again."
        )
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.problem))


def _user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_private_dir(path: str) -> str:
    """Raise :class:`UnsafePathError` unless ``path`` is a 0700 folder of this user."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(path, "is not a folder (a symlink or another file)")
    me = os.geteuid()
    if st.st_uid != me:
        raise UnsafePathError(
            path,
            f"is owned by {_user_name(st.st_uid)}, not by this user ({_user_name(me)})",
        )
    if st.st_mode & 0o077:
        raise UnsafePathError(
            path,
            f"has mode {stat.S_IMODE(st.st_mode):o}: group or other users can reach it "
            "(ember needs 700)",
        )
    return path


def ensure_private_dir(path: str) -> str:
    """Create ``path`` (mode 0700; its parent must exist) or check the existing one."""
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        pass
    return check_private_dir(path)


def ensure_private_dirs(base: str, *parts: str) -> str:
    """``base/part1/part2...``, each level created 0700 or checked; returns the last."""
    path = ensure_private_dir(base)
    for part in parts:
        path = ensure_private_dir(os.path.join(path, part))
    return path


def write_private(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600, never through a symlink."""
    raw = data.encode() if isinstance(data, str) else data
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, PRIVATE_FILE_MODE)
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_private(path: str) -> str | None:
    """The text of ``path`` (not through a symlink, owned by this user), None if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePathError(path, "is a symlink") from exc
        raise
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.geteuid():
            raise UnsafePathError(path, f"is owned by {_user_name(st.st_uid)}")
        return f.read()


def open_private_log(path: str) -> int:
    """A file descriptor appending to the log ``path`` (created 0600; caller closes it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise UnsafePathError(path, f"is owned by {_user_name(st.st_uid)}")
    if st.st_mode & 0o077:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def make_private(path: str) -> None:
    """chmod 0600 a file this process created (a socket, a database), if it exists."""
    try:
        os.chmod(path, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass
