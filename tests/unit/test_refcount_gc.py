"""A garbage collection inside a reference-count update must not deadlock.

``ObjectRef.__del__`` calls ``RefCounter.remove_local``; the collector can run
it at any allocation, including one made while the counter's lock is held
(e.g. creating a ``RefEntry`` in ``add_local``).  The test makes that
allocation collect, with a dropped ref waiting in a reference cycle.
"""

from __future__ import annotations

import gc
import threading

import pytest

from ember.runtime import ownership
from ember.runtime.ownership import RefCounter


class _Dropped:
    """Stands in for an ObjectRef that dies in a reference cycle."""

    def __init__(self, counter: RefCounter, oid: bytes) -> None:
        self.counter, self.oid = counter, oid
        self.cycle = self

    def __del__(self) -> None:
        self.counter.remove_local(self.oid)


class _CollectingEntry(ownership.RefEntry):
    __slots__ = ()

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        gc.collect()  # as if this allocation crossed the collector's threshold


def test_collection_inside_a_locked_update_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    released: list[bytes] = []
    counter = RefCounter(b"me", lambda oid, e: released.append(oid), lambda o, a: None)
    counter.add_local(b"old", None)
    _Dropped(counter, b"old")  # unreachable now; only the collector frees it
    monkeypatch.setattr(ownership, "RefEntry", _CollectingEntry)
    done = threading.Event()

    def add() -> None:
        counter.add_local(b"new", None)
        done.set()

    threading.Thread(target=add, daemon=True).start()
    assert done.wait(30), "reference counting deadlocked under garbage collection"
    assert released == [b"old"]
    assert counter.has(b"new")
    assert not counter.has(b"old")
