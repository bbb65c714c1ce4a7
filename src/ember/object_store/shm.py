"""Shared-memory arena files: naming, creation, mapping and cleanup."""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
from typing import Any

logger = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"


def arena_path(
    session_name: str, node_tag: str, fallback_dir: str, capacity: int
) -> str:
    """Where the node's arena lives: /dev/shm, or ``fallback_dir`` if it is too small."""
    name = f"ember-{session_name}-{node_tag}"
    try:
        st = os.statvfs(SHM_DIR)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = 0
    if free >= capacity:
        return os.path.join(SHM_DIR, name)
    logger.warning(
        "/dev/shm has %d bytes free, less than the object store's %d: the store falls back "
        "to %s on disk, which is slower (give the container a larger --shm-size)",
        free,
        capacity,
        fallback_dir,
    )
    os.makedirs(fallback_dir, mode=0o700, exist_ok=True)  # private, as the session
    return os.path.join(fallback_dir, name)


def create_arena(path: str, capacity: int) -> None:
    """Create the (sparse) arena file; only touched pages use memory."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, capacity)
    finally:
        os.close(fd)


def remove_arena(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def readonly_view(extent: Any) -> memoryview:
    """A read-only byte view of an :meth:`Arena.extent`."""
    return memoryview(extent).cast("B").toreadonly()


class Arena:
    """A process's mapping of the node's arena."""

    def __init__(self, path: str, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, capacity, access=mmap.ACCESS_WRITE)
        self.view = memoryview(self._map)

    def writable(self, offset: int, size: int) -> memoryview:
        """A writable view of an extent (for the producer, before seal)."""
        return self.view[offset : offset + size]

    def extent(self, offset: int, size: int) -> Any:
        """An object exporting one extent of the process's arena mapping.

        Every view taken from it (see :func:`readonly_view`) keeps it alive,
        and it supports weak references, so a finalizer on it tells when the
        last view of the object is gone.  It pins nothing by itself.  Reads go
        through the one mapping of the whole arena, so a process faults each
        page in once, not once per read.
        """
        return (ctypes.c_ubyte * size).from_buffer(self._map, offset)

    def close(self) -> None:
        try:
            self.view.release()
            self._map.close()
        except BufferError:
            pass  # views still alive; the OS unmaps at exit
        os.close(self._fd)
