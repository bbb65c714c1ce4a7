"""Serving the files of a node's ``<session>/logs`` folder: listing, tails, ranges.

``node.list_logs`` lists the regular files of the folder (recursively, as
paths relative to it) that match a glob; ``node.read_log`` returns up to
``max_bytes`` of one of them, from an offset or from the start of its last
N lines. ``ember.util.state.get_log`` pages through a file with it and
follows a growing one by asking again from where it stopped.

Only files inside the logs folder are served (the state API's callers hold
the cluster token, but a token is no licence to read ``~/.ssh``): a name
that is absolute, holds ``..`` or a NUL, or resolves (through a symlink)
outside the folder is refused with :class:`LogPathError`; the file itself
is opened with ``O_NOFOLLOW`` and must be a regular file. File I/O runs in
a thread, off the daemon's loop.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import stat
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import (
    ListLogsReply,
    ListLogsRequest,
    ReadLogReply,
    ReadLogRequest,
)

#: the most one read_log reply carries, whatever the request asks
MAX_READ_BYTES = 4 << 20
_BLOCK = 64 * 1024


class LogPathError(ValueError):
    """A log file name that points outside the node's logs folder."""


def tail_start(pread: Callable[[int, int], bytes], size: int, lines: int) -> int:
    """The offset where the last ``lines`` lines of a file of ``size`` bytes start.

    ``pread(n, offset)`` reads the file; a final newline ends the last line
    (it does not start an empty one); ``lines < 0`` means the whole file.
    """
    if lines < 0 or size == 0:
        return 0
    if lines == 0:
        return size
    end = size - 1 if pread(1, size - 1) == b"\n" else size
    pos, seen = end, 0
    while pos > 0:
        n = min(_BLOCK, pos)
        pos -= n
        chunk = pread(n, pos)
        i = len(chunk)
        while (i := chunk.rfind(b"\n", 0, i)) >= 0:
            seen += 1
            if seen == lines:
                return pos + i + 1
    return 0


def safe_relative(name: str) -> str:
    """``name`` as a normalized path inside the folder, or :class:`LogPathError`."""
    if not name or "\x00" in name:
        raise LogPathError(f"{name!r} is not a log file name")
    if os.path.isabs(name):
        raise LogPathError(
            f"{name!r} is an absolute path: give a name relative to the logs folder"
        )
    parts = name.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise LogPathError(f"{name!r} leaves the logs folder ('..')")
    return os.path.normpath(name)


class LogFiles:
    """One node's logs folder, served over ``node.list_logs`` / ``node.read_log``."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def handlers(self) -> dict[str, Any]:
        return {"node.list_logs": self.h_list, "node.read_log": self.h_read}

    async def h_list(self, conn: Any, req: ListLogsRequest, bufs: Any) -> ListLogsReply:
        return ListLogsReply(files=await asyncio.to_thread(self.list, req.glob or "*"))

    async def h_read(self, conn: Any, req: ReadLogRequest, bufs: Any) -> ReadLogReply:
        return await asyncio.to_thread(
            self.read, req.filename, req.offset, req.tail_lines, req.max_bytes
        )

    def list(self, glob: str = "*") -> list[str]:
        """The regular files under the folder whose relative path matches ``glob``."""
        out = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
            for f in files:
                full = os.path.join(root, f)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel = os.path.relpath(full, self.folder)
                if fnmatch.fnmatchcase(rel, glob) or fnmatch.fnmatchcase(f, glob):
                    out.append(rel)
        return sorted(out)

    def _open(self, name: str) -> int:
        rel = safe_relative(name)
        path = os.path.join(self.folder, rel)
        base = os.path.realpath(self.folder)
        if os.path.commonpath([base, os.path.realpath(path)]) != base:
            raise LogPathError(f"{name!r} resolves outside the logs folder")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no log file {name!r} on this node (see list_logs())"
            ) from None
        except OSError as exc:
            if os.path.islink(path):
                raise LogPathError(f"{name!r} is a symlink") from exc
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LogPathError(f"{name!r} is not a regular file")
        return fd

    def read(
        self,
        name: str,
        offset: int = -1,
        tail_lines: int = -1,
        max_bytes: int = 1 << 20,
    ) -> ReadLogReply:
        """Up to ``max_bytes`` of ``name`` (see ``ReadLogRequest``)."""
        fd = self._open(name)
        try:
            size = os.fstat(fd).st_size
            if offset >= 0:
                start = offset if offset <= size else 0  # rotated meanwhile: anew
            else:
                start = tail_start(lambda n, at: os.pread(fd, n, at), size, tail_lines)
            n = max(0, min(max_bytes, MAX_READ_BYTES, size - start))
            data = os.pread(fd, n, start) if n else b""
        finally:
            os.close(fd)
        return ReadLogReply(data=data, start=start, end=start + len(data), size=size)
