"""Object store core: allocation, sealing, pinning and deletion. Pure; no I/O.

Theory of operation: one arena of ``capacity`` bytes is shared by every
process on the node (a file in /dev/shm, mapped lazily).  The store hands out
page-aligned extents, lowest address first, and coalesces extents on free, so
that memory freed by one object is reused by the next instead of faulting in
fresh pages (DESIGN.md §5).

Invariants (mutated only through the methods below, by the node daemon's loop):
- an extent is either free or belongs to exactly one entry;
- an entry's extent returns to the free list only when it is deleted *and*
  no reader pins it (a reader's zero-copy view must never see reused memory).
"""

from __future__ import annotations

import bisect
import dataclasses

PAGE = 4096


def alloc_size(size: int) -> int:
    """The bytes an object of ``size`` takes in the arena (whole pages, at least one)."""
    return max(PAGE, -(-size // PAGE) * PAGE)


class StoreFullError(Exception):
    """No extent is free for an object; carries the sizes for the message."""

    def __init__(self, size: int, used: int, capacity: int) -> None:
        super().__init__(size, used, capacity)
        self.size = size
        self.used = used
        self.capacity = capacity


@dataclasses.dataclass
class Entry:
    """One object's extent and state."""

    offset: int
    size: int
    alloc: int
    sealed: bool = False
    pins: int = 0
    deleted: bool = False
    #: a copy pulled from another node (dropped first when room is needed)
    secondary: bool = False
    #: the store's use counter at the last create or pin (least recently used first)
    last_use: int = 0
    #: made for a reader that has not pinned it yet (a pulled copy, a restore):
    #: evicted only as a last resort, so it is not gone before its reader comes
    fresh: bool = False


@dataclasses.dataclass(frozen=True)
class StoreStats:
    """A snapshot for metrics, the dashboard and tests."""

    capacity: int
    used: int
    objects: int
    pinned: int
    free_extents: int


class ObjectStore:
    """Allocator and object table for one node's arena."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity - capacity % PAGE
        self._free: list[tuple[int, int]] = [
            (0, self.capacity)
        ]  # sorted (offset, size)
        self.entries: dict[bytes, Entry] = {}
        self.used = 0
        self._uses = 0

    def create(self, oid: bytes, size: int, secondary: bool = False) -> int:
        """Reserve an extent for ``oid``; return its offset."""
        if oid in self.entries:
            raise KeyError(f"object {oid.hex()} already exists")
        alloc = alloc_size(size)
        for i, (off, n) in enumerate(self._free):
            if n >= alloc:
                if n == alloc:
                    del self._free[i]
                else:
                    self._free[i] = (off + alloc, n - alloc)
                self._uses += 1
                self.entries[oid] = Entry(
                    off, size, alloc, secondary=secondary, last_use=self._uses
                )
                self.used += alloc
                return off
        raise StoreFullError(size, self.used, self.capacity)

    def fits(self, size: int) -> bool:
        """Would :meth:`create` of ``size`` bytes succeed now?"""
        alloc = alloc_size(size)
        return any(n >= alloc for _, n in self._free)

    def hold(self, oid: bytes) -> None:
        """Pin an entry whether or not it is sealed (the daemon's own I/O on it)."""
        self.entries[oid].pins += 1

    def seal(self, oid: bytes) -> None:
        self.entries[oid].sealed = True

    def pin(self, oid: bytes) -> Entry | None:
        """A reader's pin: the sealed entry, or None if absent."""
        e = self.entries.get(oid)
        if e is None or not e.sealed or e.deleted:
            return None
        e.pins += 1
        self._uses += 1
        e.last_use = self._uses
        e.fresh = False
        return e

    def unpin(self, oid: bytes) -> None:
        e = self.entries.get(oid)
        if e is None:
            return
        if e.pins <= 0:
            return  # an unpin without a pin: never let a count go negative
        e.pins -= 1
        if e.pins == 0 and e.deleted:
            self._release(oid, e)

    def delete(self, oid: bytes) -> None:
        """Delete ``oid``; its memory is reused once no reader pins it."""
        e = self.entries.get(oid)
        if e is None or e.deleted:
            return
        e.deleted = True
        if e.pins <= 0:
            self._release(oid, e)

    def revive(self, oid: bytes) -> bool:
        """Is a sealed copy of ``oid`` here? One deleted but still pinned comes back."""
        e = self.entries.get(oid)
        if e is None or not e.sealed:
            return False
        e.deleted = False
        return True

    def contains(self, oid: bytes) -> bool:
        e = self.entries.get(oid)
        return e is not None and e.sealed and not e.deleted

    def _release(self, oid: bytes, e: Entry) -> None:
        del self.entries[oid]
        self.used -= e.alloc
        off, n = e.offset, e.alloc
        i = bisect.bisect_left(self._free, (off, 0))
        # coalesce with the next extent
        if i < len(self._free) and self._free[i][0] == off + n:
            n += self._free[i][1]
            del self._free[i]
        # and with the previous one
        if i > 0 and self._free[i - 1][0] + self._free[i - 1][1] == off:
            poff, pn = self._free[i - 1]
            self._free[i - 1] = (poff, pn + n)
        else:
            self._free.insert(i, (off, n))

    def statistics(self) -> StoreStats:
        return StoreStats(
            capacity=self.capacity,
            used=self.used,
            objects=len(self.entries),
            pinned=sum(1 for e in self.entries.values() if e.pins > 0),
            free_extents=len(self._free),
        )
