"""The pure memory store: entry states and one readiness mechanism with deadlines."""

from __future__ import annotations

import threading

from ember.common.clock import FakeClock
from ember.runtime.memory_store import CANCELLED, EXPIRED, READY, MemoryStore

A, B, C = b"a" * 20, b"b" * 20, b"c" * 20


def _store(referenced: bool = True) -> tuple[MemoryStore, FakeClock]:
    clock = FakeClock(100.0)
    return MemoryStore(clock, keep=lambda oid: referenced), clock


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.clock: FakeClock | None = None

    def ready(self) -> None:
        assert self.clock is not None
        self.events.append(("ready", self.clock.now()))

    def timeout(self) -> None:
        assert self.clock is not None
        self.events.append(("timeout", self.clock.now()))


def test_waiter_times_out_exactly_at_its_deadline() -> None:
    store, clock = _store()
    log = Log()
    log.clock = clock
    store.add_pending(A)
    deadline = store.deadline(1.0)
    w = store.wait_for([A], 1, log.ready, deadline=deadline, on_timeout=log.timeout)
    clock.advance(0.999)
    assert store.expire_due() == deadline
    assert log.events == []
    clock.advance(0.001)
    assert store.expire_due() is None
    assert log.events == [("timeout", 101.0)]
    assert w.state == EXPIRED
    store.set_inline(A, b"x", [])  # too late: nothing more happens
    assert log.events == [("timeout", 101.0)]


def test_a_wait_in_two_stages_shares_one_deadline() -> None:
    # A blocked get first waits on its thread, then (if it must) on the loop:
    # both stages use the deadline computed once, so T passes once, not twice.
    store, clock = _store()
    log = Log()
    log.clock = clock
    store.add_pending(A)
    deadline = store.deadline(1.0)
    first = store.wait_for([A], 1, log.ready, deadline=deadline)
    assert store.remaining(deadline) == 1.0
    clock.advance(1.0)
    assert store.remaining(deadline) == 0.0
    assert store.cancel(first)
    store.wait_for([A], 1, log.ready, deadline=deadline, on_timeout=log.timeout)
    assert log.events == [("timeout", 101.0)]


def test_ready_before_the_deadline_fires_once_and_never_times_out() -> None:
    store, clock = _store()
    log = Log()
    log.clock = clock
    store.add_pending(A)
    store.add_pending(B)
    w = store.wait_for(
        [A, B], 2, log.ready, deadline=store.deadline(5), on_timeout=log.timeout
    )
    store.set_inline(A, b"1", [])
    assert log.events == []
    clock.advance(1)
    store.set_stored(B, b"n" * 16, 10)
    assert log.events == [("ready", 101.0)]
    clock.advance(10)
    assert store.expire_due() is None
    assert log.events == [("ready", 101.0)]
    assert w.state == READY
    assert store.entries[B].stored()
    assert store.entries[B].size == 10


def test_ready_and_unknown_ids_count_at_once() -> None:
    store, _ = _store()
    fired: list[int] = []
    store.add_pending(A)
    store.set_inline(A, b"v", [])
    store.wait_for([A, C], 2, lambda: fired.append(1))  # C is unknown (freed)
    assert fired == [1]


def test_k_of_n_waiter_and_outside_signals() -> None:
    store, _ = _store()
    fired: list[int] = []
    for oid in (A, B, C):
        store.add_pending(oid)
    w = store.wait_for([A, B], 2, lambda: fired.append(1))
    store.signal(w)  # e.g. a borrowed value fetched from its owner
    assert fired == []
    store.set_inline(B, b"1", [])
    assert fired == [1]
    assert store.entries[A].waiters == []  # detached from what it no longer needs
    store.set_inline(A, b"2", [])
    assert fired == [1]


def test_cancel_detaches_and_loses_against_ready() -> None:
    store, _ = _store()
    fired: list[int] = []
    store.add_pending(A)
    w = store.wait_for([A], 1, lambda: fired.append(1))
    assert store.cancel(w)
    assert w.state == CANCELLED
    assert store.entries[A].waiters == []
    store.set_inline(A, b"1", [])
    assert fired == []
    store.add_pending(B)
    w2 = store.wait_for([B], 1, lambda: fired.append(2))
    store.set_inline(B, b"1", [])
    assert not store.cancel(w2)
    assert fired == [2]


def test_a_value_for_an_unreferenced_id_is_not_kept() -> None:
    store, _ = _store(referenced=False)
    assert store.set_stored(A, b"n" * 16, 10) is None
    assert store.set_inline(A, b"x", []) is None
    assert A not in store.entries


def test_a_blocked_thread_waits_on_a_bare_lock_released_by_the_filler() -> None:
    store, _ = _store()
    store.add_pending(A)
    lock = threading.Lock()
    lock.acquire()
    w = store.wait_for([A], 1, lock.release, deadline=store.deadline(30))
    filler = threading.Thread(target=store.set_inline, args=(A, b"v", []))
    filler.start()
    assert lock.acquire(timeout=30)
    filler.join()
    assert w.state == READY


def test_stale_deadlines_are_compacted() -> None:
    store, _ = _store()
    store.add_pending(A)
    for _ in range(200):
        w = store.wait_for(
            [A], 1, lambda: None, deadline=store.deadline(60), on_timeout=lambda: None
        )
        store.cancel(w)
    assert len(store._deadlines) < 200
    assert store.next_deadline() is None
