"""Spill files on disk: the private folder, batch writes from the arena, reads back.

These functions block; the node daemon runs them in its spill threads.  Writes
go straight from memoryview slices of the mapped arena with ``os.pwritev``
and reads land straight in the arena with ``os.preadv``: no Python bytes copy
of a value is ever made.  Files are created ``O_EXCL | O_NOFOLLOW``, mode
0600, in a folder this user owns with mode 0700 (docs/security.md).
"""

from __future__ import annotations

import errno
import json
import os
import shutil

from ember.common.private_files import ensure_private_dir

#: the most bytes one pwritev/preadv call moves (Linux caps a call near 2 GiB)
MAX_IO_BYTES = 1 << 30


class SpillDiskFullError(OSError):
    """The spill folder's disk has no room (ENOSPC or EDQUOT)."""


def spill_folder(session_dir: str, user_dir: str) -> str:
    """Create the folder this node spills to (removed whole when the node stops).

    The default is ``<session>/spill``.  A folder the user names (which may be
    shared, as ``/tmp`` is) gets a private subfolder named after the session,
    created 0700 and checked, so other users can neither read nor plant files.
    """
    if not user_dir:
        return ensure_private_dir(os.path.join(session_dir, "spill"))
    os.makedirs(user_dir, mode=0o700, exist_ok=True)
    name = os.path.basename(session_dir.rstrip("/")) or "ember-session"
    return ensure_private_dir(os.path.join(user_dir, name))


def _full(exc: OSError, path: str) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpillDiskFullError(exc.errno, f"no space left for {path}")
    return exc


def write_batch(path: str, parts: list[tuple[int, memoryview]]) -> None:
    """Write each ``(offset, view)`` of ``parts`` into a new file at ``path``.

    A failed write removes the partial file and raises (``SpillDiskFullError``
    when the disk is full).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        for offset, view in parts:
            done = 0
            while done < len(view):
                n = os.pwritev(fd, [view[done : done + MAX_IO_BYTES]], offset + done)
                if n <= 0:
                    raise OSError(errno.EIO, f"short write to {path}")
                done += n
    except OSError as exc:
        os.close(fd)
        remove_file(path)
        raise _full(exc, path) from exc
    os.close(fd)


def read_into(path: str, offset: int, dest: memoryview) -> None:
    """Fill ``dest`` from ``path`` at ``offset``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        done = 0
        while done < len(dest):
            n = os.preadv(fd, [dest[done : done + MAX_IO_BYTES]], offset + done)
            if n <= 0:
                raise OSError(errno.EIO, f"{path} ends before its object does")
            done += n
    finally:
        os.close(fd)


def read_range(path: str, offset: int, length: int) -> bytearray:
    """``length`` bytes of ``path`` from ``offset`` (a transfer chunk)."""
    buf = bytearray(length)
    read_into(path, offset, memoryview(buf))
    return buf


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_folder(path: str) -> None:
    """Remove the node's spill folder and whatever is still in it."""
    shutil.rmtree(path, ignore_errors=True)


def configured_directory(flag: str, directory: str, ray_config: str) -> str:
    """The spill directory a node was given ("" for the default), in Ray's order.

    ``--object-spilling-directory`` first, then the ``object_spilling_directory``
    setting, then Ray's ``object_spilling_config`` JSON (``{"type":
    "filesystem", "params": {"directory_path": DIR or [DIR, ...]}}``).

    Raises:
        ValueError: ``ray_config`` is not a filesystem spilling config.
    """
    if flag or directory:
        return flag or directory
    if not ray_config:
        return ""
    try:
        cfg = json.loads(ray_config)
        kind, params = cfg.get("type", "filesystem"), cfg.get("params", {})
        path = params.get("directory_path", "")
    except (ValueError, AttributeError) as exc:
        raise ValueError(
            f"object_spilling_config must be a JSON object such as "
            f'{{"type": "filesystem", "params": {{"directory_path": "/tmp/spill"}}}}; '
            f"got {ray_config!r}"
        ) from exc
    if kind != "filesystem":
        raise ValueError(
            f"object_spilling_config type {kind!r} is not supported by ember: only "
            "'filesystem' (a local folder) is"
        )
    if isinstance(path, list):
        path = path[0] if path else ""
    if not isinstance(path, str):
        raise ValueError(
            f"object_spilling_config directory_path must be a string, got {path!r}"
        )
    return path
