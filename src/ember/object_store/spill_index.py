"""Where each spilled object lives on disk, and when a spill file can go. Pure.

A spill file holds one batch of objects.  The index maps each live object to
its file and byte range, and counts the live objects of every file: when the
last one is freed, :meth:`SpillIndex.forget` hands the file's path back so
the caller deletes it.  An object keeps its spill location after a restore,
so that evicting it again costs no write; the location goes only when the
object is freed.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SpillLocation:
    """One object's bytes in a spill file."""

    path: str
    offset: int
    size: int


@dataclasses.dataclass(frozen=True)
class SpillIndexStats:
    files: int
    objects: int
    #: the bytes of live objects held in spill files
    bytes: int


class SpillIndex:
    """Spilled objects by id, and the live objects of every spill file."""

    def __init__(self) -> None:
        self._where: dict[bytes, SpillLocation] = {}
        self._live: dict[str, set[bytes]] = {}
        self._bytes = 0

    def __contains__(self, oid: object) -> bool:
        return oid in self._where

    def add_file(self, path: str, objects: list[tuple[bytes, int, int]]) -> None:
        """Record a written file holding ``objects`` as ``(oid, offset, size)``."""
        if not objects:
            raise ValueError("a spill file with no live object must be deleted instead")
        if path in self._live:
            raise KeyError(f"spill file {path} is already recorded")
        live = self._live[path] = set()
        for oid, offset, size in objects:
            if oid in self._where:
                raise KeyError(f"object {oid.hex()} is already spilled")
            self._where[oid] = SpillLocation(path, offset, size)
            live.add(oid)
            self._bytes += size

    def location(self, oid: bytes) -> SpillLocation | None:
        return self._where.get(oid)

    def forget(self, oid: bytes) -> str | None:
        """Drop a freed object; the path of its file if that file holds nothing live now."""
        loc = self._where.pop(oid, None)
        if loc is None:
            return None
        self._bytes -= loc.size
        live = self._live[loc.path]
        live.discard(oid)
        if live:
            return None
        del self._live[loc.path]
        return loc.path

    def oids(self) -> list[bytes]:
        """The ids of every spilled object."""
        return list(self._where)

    def paths(self) -> list[str]:
        return list(self._live)

    def statistics(self) -> SpillIndexStats:
        return SpillIndexStats(
            files=len(self._live), objects=len(self._where), bytes=self._bytes
        )
