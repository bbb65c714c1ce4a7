"""The memory store: object entries, their states, and waiting for them to be ready.

Pure: no asyncio, no sockets.  The I/O around it (pinning, mapping, fetching
from owners, releases) is ``objects.py``; the loop that drives deadlines is
the caller's.

Theory of operation
-------------------

An entry is *pending* (``ready`` false) until it is filled with an *inline*
value (``data`` and ``bufs``), an *error* (an inline pickled exception,
``is_error``) or a *stored* value (``node_id`` of the node whose arena holds
it, ``data`` None).  Filling happens once, on the loop thread.

Every wait is a :class:`Waiter`: it needs ``need`` readiness events (one per
entry that becomes ready, or one per :meth:`MemoryStore.signal` from outside,
e.g. a value fetched from its owner) before an optional deadline.  It ends
exactly once, in one of three ways::

    WAITING --need reaches 0-------------> READY    (on_ready() runs)
            --expire_due() at deadline---> EXPIRED  (on_timeout() runs)
            --cancel()-------------------> CANCELLED

A blocked ``get`` (a user thread) passes ``on_ready=lock.release`` and waits
on the bare lock until the deadline itself, then cancels; a coroutine passes
callbacks that complete a future; a task waiting for its arguments passes a
plain callback.  State changes happen under one lock (user threads register
and cancel, the loop fills); callbacks run outside it.

Deadlines are absolute times of the injected :class:`~ember.common.clock.Clock`,
computed once per call (:meth:`MemoryStore.deadline`), so a wait that moves
from one stage to another never gets its timeout twice.  Waiters with an
``on_timeout`` are kept in a heap; the owner of the loop calls
:meth:`MemoryStore.expire_due` at :meth:`MemoryStore.next_deadline`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Any

from ember.common.clock import Clock
from ember.protocol.messages import Address

WAITING, READY, EXPIRED, CANCELLED = 0, 1, 2, 3


class ObjEntry:
    """One object in the memory store (see the module docstring for its states)."""

    __slots__ = (
        "bufs",
        "copies",
        "data",
        "is_error",
        "mapping",
        "node_id",
        "owner",
        "ready",
        "size",
        "waiters",
    )

    def __init__(self) -> None:
        self.ready = False
        self.data: Any = None
        self.bufs: list[Any] = []
        self.is_error = False
        self.node_id = b""
        self.size = 0
        #: this process's read-only mapping of a stored value, once it has read it
        self.mapping: Any = None
        #: waiters registered while pending (None once ready)
        self.waiters: list[Waiter] | None = None
        #: other nodes holding secondary copies (owner side), freed with the primary
        self.copies: list[bytes] | None = None
        #: the owner, for a borrower's cached entry
        self.owner: Address | None = None

    def stored(self) -> bool:
        return self.ready and self.data is None and not self.is_error


class Waiter:
    """One wait for ``need`` readiness events, until an optional deadline."""

    __slots__ = (
        "deadline",
        "entries",
        "in_heap",
        "need",
        "on_ready",
        "on_timeout",
        "partial",
        "state",
    )

    def __init__(
        self,
        need: int,
        on_ready: Callable[[], Any],
        deadline: float | None,
        on_timeout: Callable[[], Any] | None,
    ) -> None:
        self.need = need
        self.on_ready = on_ready
        self.deadline = deadline
        self.on_timeout = on_timeout
        self.state = WAITING
        self.in_heap = False
        #: it may become ready while some of its entries are still pending
        self.partial = False
        #: the entries it waits on (to detach it from those still pending when it ends)
        self.entries: list[ObjEntry] | None = None


class MemoryStore:
    """Entries by object id, and the one readiness mechanism for all waiters."""

    def __init__(self, clock: Clock, keep: Callable[[bytes], bool]) -> None:
        """``keep(oid)``: whether a value arriving for an unknown id is still referenced."""
        self.clock = clock
        self.entries: dict[bytes, ObjEntry] = {}
        self._keep = keep
        self._lock = threading.Lock()
        self._deadlines: list[tuple[float, int, Waiter]] = []
        self._seq = itertools.count()
        #: heap items of waiters that ended otherwise than by expiring
        self._stale = 0

    # -- producing (loop thread, except insert) -------------------------------------
    def add_pending(self, oid: bytes) -> None:
        self.entries[oid] = ObjEntry()

    def insert(self, oid: bytes, e: ObjEntry) -> None:
        """Insert a fresh entry (any thread: nobody can wait on an id before this)."""
        self.entries[oid] = e

    def set_inline(
        self, oid: bytes, data: Any, bufs: list[Any], is_error: bool = False
    ) -> ObjEntry | None:
        e = self._target(oid)
        if e is None:
            return None
        e.data, e.bufs, e.is_error, e.size = data, bufs, is_error, len(data)
        self._ready(e)
        return e

    def set_stored(self, oid: bytes, node_id: bytes, size: int) -> ObjEntry | None:
        """Record a value stored at ``node_id``; None if nobody references it any more."""
        e = self._target(oid)
        if e is None:
            return None
        e.data, e.node_id, e.size = None, node_id, size
        self._ready(e)
        return e

    def pop(self, oid: bytes) -> ObjEntry | None:
        return self.entries.pop(oid, None)

    def _target(self, oid: bytes) -> ObjEntry | None:
        e = self.entries.get(oid)
        if e is None:
            if not self._keep(oid):
                return None  # nobody references it any more
            e = self.entries[oid] = ObjEntry()
        return e

    def _ready(self, e: ObjEntry) -> None:
        """Mark ``e`` filled and end the waiters it completes (their callbacks unlocked)."""
        with self._lock:
            e.ready = True
            waiters = e.waiters
            if not waiters:
                return
            e.waiters = None
            fire = []
            for w in waiters:
                if w.state == WAITING:
                    w.need -= 1
                    if w.need <= 0:
                        w.state = READY
                        fire.append(w)
        for w in fire:
            if w.partial or w.in_heap:
                self._detach(w)
            w.on_ready()

    # -- waiting ------------------------------------------------------------------------
    def deadline(self, timeout: float | None) -> float | None:
        """The absolute deadline of a wait of ``timeout`` seconds starting now."""
        return None if timeout is None else self.clock.now() + timeout

    def remaining(self, deadline: float | None) -> float | None:
        """Seconds left until ``deadline`` (never negative), None for no deadline."""
        return None if deadline is None else max(0.0, deadline - self.clock.now())

    def wait_for(
        self,
        oids: list[bytes],
        need: int,
        on_ready: Callable[[], Any],
        *,
        deadline: float | None = None,
        on_timeout: Callable[[], Any] | None = None,
    ) -> Waiter:
        """Call ``on_ready()`` after ``need`` events; each of ``oids`` ready is one.

        An id that is ready (or unknown: freed, or not ours) counts at once.
        ``on_timeout()`` runs instead if the deadline passes first (checked by
        :meth:`expire_due`; without ``on_timeout`` the caller enforces it).
        Either callback may run before this returns.
        """
        w = Waiter(need, on_ready, deadline, on_timeout)
        registered: list[ObjEntry] = []
        with self._lock:
            entries = self.entries
            for oid in oids:
                e = entries.get(oid)
                if e is None or e.ready:
                    w.need -= 1
                    continue
                if e.waiters is None:
                    e.waiters = [w]
                else:
                    e.waiters.append(w)
                registered.append(e)
            w.entries = registered
            if w.need > 0:
                w.partial = w.need < len(registered)
                if deadline is None or on_timeout is None:
                    return w
            ended = self._start(w)
        if ended:
            self._end_now(w)
        return w

    def wait_for_entries(
        self,
        entries: list[ObjEntry],
        on_ready: Callable[[], Any],
        deadline: float | None = None,
    ) -> Waiter | None:
        """Wait for all of ``entries`` (the caller enforces the deadline).

        None, without calling ``on_ready``, if all are ready already.
        """
        w = Waiter(0, on_ready, deadline, None)
        with self._lock:
            for e in entries:
                if not e.ready:
                    w.need += 1
                    if e.waiters is None:
                        e.waiters = [w]
                    else:
                        e.waiters.append(w)
            if w.need == 0:
                return None
            w.entries = entries
        return w

    def _start(self, w: Waiter) -> bool:
        """Under the lock: end a waiter with nothing left to wait for; True if it ended."""
        if w.need <= 0:
            w.state = READY
            return True
        if w.deadline is not None and w.on_timeout is not None:
            if w.deadline <= self.clock.now():
                w.state = EXPIRED
                return True
            w.in_heap = True
            heapq.heappush(self._deadlines, (w.deadline, next(self._seq), w))
        return False

    def _end_now(self, w: Waiter) -> None:
        self._detach(w)
        if w.state == READY:
            w.on_ready()
        else:
            assert w.on_timeout is not None
            w.on_timeout()

    def signal(self, w: Waiter) -> None:
        """One readiness event from outside the store (loop thread)."""
        with self._lock:
            if w.state != WAITING:
                return
            w.need -= 1
            if w.need > 0:
                w.partial = True  # it may end with registered entries still pending
                return
            w.state = READY
        self._detach(w)
        w.on_ready()

    def cancel(self, w: Waiter) -> bool:
        """Stop waiting (any thread); False if it had already ended (e.g. became ready)."""
        with self._lock:
            if w.state != WAITING:
                return False
            w.state = CANCELLED
        self._detach(w)
        return True

    def next_deadline(self) -> float | None:
        """The earliest deadline of a waiter that still waits."""
        with self._lock:
            return self._peek()

    def expire_due(self) -> float | None:
        """End every waiter whose deadline has come (``on_timeout``); the next deadline."""
        now = self.clock.now()
        due: list[Waiter] = []
        with self._lock:
            heap = self._deadlines
            while heap and (heap[0][2].state != WAITING or heap[0][0] <= now):
                w = heapq.heappop(heap)[2]
                if w.state == WAITING:
                    w.state = EXPIRED
                    due.append(w)
                else:
                    self._stale -= 1
            nxt = self._peek()
        for w in due:
            self._detach(w)
            assert w.on_timeout is not None
            w.on_timeout()
        return nxt

    def _forget_deadline(self) -> None:
        with self._lock:
            self._stale += 1
            heap = self._deadlines
            if self._stale > 64 and self._stale * 2 > len(heap):
                heap[:] = [item for item in heap if item[2].state == WAITING]
                heapq.heapify(heap)
                self._stale = 0

    def _peek(self) -> float | None:
        heap = self._deadlines
        while heap and heap[0][2].state != WAITING:
            heapq.heappop(heap)
            self._stale -= 1
        return heap[0][0] if heap else None

    def _detach(self, w: Waiter) -> None:
        """Unregister an ended waiter from the entries still pending."""
        if w.in_heap and w.state != EXPIRED:
            self._forget_deadline()  # its heap item is stale now
        entries, w.entries = w.entries, None
        if not entries:
            return
        for e in entries:
            if e.waiters is not None:
                break  # still pending (a ready entry's list is gone for good)
        else:
            return
        with self._lock:
            for e in entries:
                if e.waiters is not None:
                    try:
                        e.waiters.remove(w)
                    except ValueError:
                        pass
