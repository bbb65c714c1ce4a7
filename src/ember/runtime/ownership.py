"""Reference counting for owned and borrowed objects.

Counts per object id (DESIGN.md §2):
- ``local``: live ``ObjectRef`` instances in this process;
- ``submitted``: pending tasks of ours that take it as an argument;
- ``borrowers`` (owner side): other processes that registered as borrowers.

When all are zero the object is released: an owner frees it everywhere, a
borrower tells the owner it no longer borrows.  ``__del__`` of an ObjectRef
may run in any thread, so counts are kept under a lock and the release work
is handed to the event loop.

Invariants: an entry exists while any count is non-zero; only the loop
thread mutates ``borrowers``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import Address


class RefEntry:
    """Counts for one object id."""

    __slots__ = (
        "borrow_registered",
        "borrowers",
        "contained",
        "local",
        "owned",
        "owner",
        "submitted",
    )

    def __init__(self, owned: bool, owner: Address | None) -> None:
        self.local = 0
        self.submitted = 0
        self.owned = owned
        self.owner = owner
        self.borrowers: set[bytes] = set()
        self.borrow_registered = False
        #: refs inside this object's value, kept alive while it lives
        self.contained: list[Any] | None = None

    def idle(self) -> bool:
        return self.local <= 0 and self.submitted <= 0 and not self.borrowers


class RefCounter:
    """Counts for every object this process owns or borrows."""

    def __init__(
        self,
        worker_id: bytes,
        on_release: Callable[[bytes, RefEntry], None],
        on_borrow: Callable[[bytes, Address], None],
    ) -> None:
        self._me = worker_id
        # Re-entrant: ObjectRef.__del__ (remove_local) can run from a garbage
        # collection triggered by an allocation inside any locked section.
        self._lock = threading.RLock()
        self.entries: dict[bytes, RefEntry] = {}
        self._on_release = on_release
        self._on_borrow = on_borrow

    def _entry(self, oid: bytes, owner: Address | None) -> RefEntry:
        e = self.entries.get(oid)
        if e is None:
            owned = owner is None or owner.worker_id == self._me
            e = self.entries[oid] = RefEntry(owned, owner)
        return e

    def add_local(self, oid: bytes, owner: Address | None) -> None:
        with self._lock:
            self._entry(oid, owner).local += 1

    def remove_local(self, oid: bytes) -> None:
        with self._lock:
            e = self.entries.get(oid)
            if e is None:
                return
            e.local -= 1
            if not e.idle():
                return
            del self.entries[oid]
        self._on_release(oid, e)

    def on_deserialized(self, ref: Any) -> None:
        """A ref arrived inside a value: count it, and borrow it if foreign."""
        owner = ref._owner
        with self._lock:
            e = self._entry(ref._id, owner)
            e.local += 1
            first = not e.owned and not e.borrow_registered
            if first:
                e.borrow_registered = True
        ref._registered = True
        if first and owner is not None:
            self._on_borrow(ref._id, owner)

    def add_submitted(self, oids: list[bytes], owners: list[Address | None]) -> None:
        if not oids:
            return
        with self._lock:
            for oid, owner in zip(oids, owners, strict=True):
                self._entry(oid, owner).submitted += 1

    def remove_submitted(self, oids: list[bytes]) -> None:
        released = []
        with self._lock:
            for oid in oids:
                e = self.entries.get(oid)
                if e is None:
                    continue
                e.submitted -= 1
                if e.idle():
                    del self.entries[oid]
                    released.append((oid, e))
        for oid, e in released:
            self._on_release(oid, e)

    def add_borrower(self, oid: bytes, borrower: bytes) -> bool:
        with self._lock:
            e = self.entries.get(oid)
            if e is None:
                return False
            e.borrowers.add(borrower)
            return True

    def remove_borrower(self, oid: bytes, borrower: bytes) -> None:
        with self._lock:
            e = self.entries.get(oid)
            if e is None:
                return
            e.borrowers.discard(borrower)
            if not e.idle():
                return
            del self.entries[oid]
        self._on_release(oid, e)

    def set_contained(self, oid: bytes, refs: list[Any]) -> None:
        with self._lock:
            e = self.entries.get(oid)
            if e is not None:
                e.contained = refs

    def contains_refs(self, oid: bytes) -> bool:
        """Whether the value of ``oid`` holds other refs (known to its owner)."""
        e = self.entries.get(oid)
        return e is not None and bool(e.contained)

    def has(self, oid: bytes) -> bool:
        return oid in self.entries

    def snapshot(self) -> list[tuple[bytes, RefEntry]]:
        """Every entry, copied under the lock (for reports: ``ref_report.py``)."""
        with self._lock:
            return list(self.entries.items())

    def statistics(self) -> dict[str, int]:
        with self._lock:
            entries = list(self.entries.values())
        owned = sum(1 for e in entries if e.owned)
        return {
            "objects": len(entries),
            "owned": owned,
            "borrowed": len(entries) - owned,
        }
