"""Lineage bookkeeping of one owner: which finished task made each owned object.

Pure: no I/O, no threads (the owner's loop thread calls it).  The recovery
of lost objects (``recovery.py``) asks it which task to run again.

A :class:`LineageRecord` is kept for a finished normal task that stored a
return in a node's arena (only those can be lost: inline values live in the
owner's memory), while it may be needed to rebuild an object:

- ``live``: the task's returns that are still referenced (released one by one
  by :meth:`Lineage.released`);
- ``dependents``: how many arguments of other kept records are returns of
  this task (re-running those may need this task's returns again, even after
  the user dropped them: recursive reconstruction).

A record with neither is dropped, and dropping it releases its own arguments'
producers in turn.  A record may *pin* objects it needs to run again that no
task could make (the stored argument blob of a task with large arguments):
``on_unpin`` is called with them once the record is dropped or has no retry
left.  The records' ``size`` (spec and argument bytes) is capped
per owner (``max_bytes``, ``EMBER_MAX_LINEAGE_BYTES``): past the cap the
oldest records are evicted, and their still-referenced returns remembered as
*evicted* (bounded), so that their loss is reported as
``ObjectReconstructionFailedLineageEvictedError``.

Invariants: ``total_bytes`` is the sum of the kept records' sizes;
``producer(oid)`` is the record listing ``oid`` among its returns, while it is
kept; a record is kept only while ``live`` or ``dependents`` is non-zero.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: what a record costs beyond its argument bytes (a TaskSpec is ~750 bytes, plus
#: the record itself), measured with tracemalloc
RECORD_OVERHEAD_BYTES = 1024


class LineageRecord:
    """How to run one finished task again."""

    __slots__ = (
        "arg_oids",
        "arg_owners",
        "dependents",
        "frames",
        "live",
        "name",
        "pinned",
        "retries_left",
        "return_oids",
        "size",
        "spec",
        "task_id",
        "values",
    )

    def __init__(
        self,
        task_id: bytes,
        spec: Any,
        frames: list[Any],
        return_oids: list[bytes],
        arg_oids: list[bytes],
        arg_owners: list[Any],
        retries_left: int,
        size: int,
    ) -> None:
        self.task_id = task_id
        #: the task's name (kept for messages when the spec goes)
        self.name: str = getattr(spec, "name", "") or ""
        #: the task spec and argument frames (None/[] once no retry is left)
        self.spec = spec
        self.frames = frames
        self.return_oids = return_oids
        self.arg_oids = arg_oids
        #: the owner ``Address`` of each argument (None: ours)
        self.arg_owners = arg_owners
        #: -1: forever
        self.retries_left = retries_left
        self.size = size
        self.live: set[bytes] = set()
        self.dependents = 0
        #: objects kept alive for this record (given to ``on_unpin`` when it goes)
        self.pinned: list[bytes] = []
        #: copies of small owned argument values (oid -> (data, bufs, is_error)):
        #: put back if they were freed when the task must run again
        self.values: dict[bytes, Any] | None = None


def record_size(spec: Any, frames: list[Any]) -> int:
    """The bytes a record keeps alive: the inline argument blob and its frames."""
    n = RECORD_OVERHEAD_BYTES
    if spec is not None:
        n += len(spec.args or b"")
    for f in frames:
        n += memoryview(f).nbytes
    return n


class Lineage:
    """The lineage records of one owner, with a byte cap."""

    def __init__(
        self,
        max_bytes: int,
        max_evicted: int = 100_000,
        on_unpin: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self._on_unpin = on_unpin
        self.total_bytes = 0
        self.evictions = 0
        self._max_evicted = max_evicted
        #: by task id, oldest first (the eviction order)
        self._records: dict[bytes, LineageRecord] = {}
        self._producer: dict[bytes, LineageRecord] = {}
        self._evicted: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def record(
        self,
        task_id: bytes,
        spec: Any,
        frames: list[Any],
        return_oids: list[bytes],
        live_returns: list[bytes],
        arg_oids: list[bytes],
        arg_owners: list[Any],
        retries_left: int,
        pinned: list[bytes] | None = None,
        extra_bytes: int = 0,
        values: dict[bytes, Any] | None = None,
    ) -> LineageRecord | None:
        """A task finished: keep what it takes to run it again; the record, if kept.

        A task recorded already (it ran again to rebuild an object) only has its
        retries updated.  Nothing is kept when no return is referenced any more.
        ``pinned`` is held by the new record: the caller counted a reference to
        each, which ``on_unpin`` gives back.  ``values`` are copies of small
        argument values; ``extra_bytes`` is what the pinned objects and the
        values weigh.
        """
        rec = self._records.get(task_id)
        if rec is not None:
            rec.retries_left = retries_left
            if retries_left == 0:
                self._strip(rec)
            return rec
        if not live_returns:
            self._unpin(pinned or [])
            return None
        name = getattr(spec, "name", "")
        if retries_left == 0:
            spec, frames = None, []  # it can never run again: keep only the verdict
            self._unpin(pinned or [])
            pinned, extra_bytes, values = [], 0, None
        rec = LineageRecord(
            task_id,
            spec,
            frames,
            return_oids,
            arg_oids,
            arg_owners,
            retries_left,
            record_size(spec, frames) + extra_bytes,
        )
        rec.values = values
        rec.pinned = list(pinned or [])
        rec.name = name
        rec.live.update(live_returns)
        self._records[task_id] = rec
        for oid in return_oids:
            self._producer[oid] = rec
        for oid in arg_oids:
            parent = self._producer.get(oid)
            if parent is not None and parent is not rec:
                parent.dependents += 1
        self.total_bytes += rec.size
        self._enforce_cap()
        return rec if task_id in self._records else None

    def has(self, task_id: bytes) -> bool:
        return task_id in self._records

    def producer(self, oid: bytes) -> LineageRecord | None:
        """The kept record of the task that returned ``oid``."""
        return self._producer.get(oid)

    def was_evicted(self, oid: bytes) -> bool:
        """Whether ``oid``'s lineage was evicted (by the byte cap) while it was referenced."""
        return oid in self._evicted

    def take_attempt(self, rec: LineageRecord) -> bool:
        """Count one re-execution against the task's retries; False if none is left."""
        if rec.retries_left == 0 or rec.spec is None:
            return False
        if rec.retries_left > 0:
            rec.retries_left -= 1
        return True

    def released(self, oid: bytes) -> None:
        """No reference to the owned object ``oid`` remains."""
        self._evicted.pop(oid, None)
        rec = self._producer.get(oid)
        if rec is None or oid not in rec.live:
            return
        rec.live.discard(oid)
        if not rec.live and rec.dependents <= 0:
            self._drop(rec, evicted=False)

    # -- internals ---------------------------------------------------------------------
    def _strip(self, rec: LineageRecord) -> None:
        """No retry is left: the spec and frames can go (the verdict stays)."""
        self.total_bytes -= rec.size
        rec.spec, rec.frames, rec.values = None, [], None
        rec.size = record_size(None, [])
        self.total_bytes += rec.size
        pinned, rec.pinned = rec.pinned, []
        self._unpin(pinned)

    def _unpin(self, oids: list[bytes]) -> None:
        if oids and self._on_unpin is not None:
            self._on_unpin(oids)

    def _enforce_cap(self) -> None:
        while self.total_bytes > self.max_bytes and self._records:
            oldest = next(iter(self._records.values()))
            self.evictions += 1
            self._drop(oldest, evicted=True)

    def _drop(self, first: LineageRecord, evicted: bool) -> None:
        """Forget ``first``, then every producer it alone kept (iteratively)."""
        stack = [(first, evicted)]
        while stack:
            rec, was_evicted = stack.pop()
            if self._records.pop(rec.task_id, None) is None:
                continue
            self.total_bytes -= rec.size
            pinned, rec.pinned = rec.pinned, []
            self._unpin(pinned)
            for oid in rec.return_oids:
                if self._producer.get(oid) is rec:
                    del self._producer[oid]
                if was_evicted and (oid in rec.live or rec.dependents > 0):
                    self._remember_evicted(oid)
            for oid in rec.arg_oids:
                parent = self._producer.get(oid)
                if parent is None or parent is rec:
                    continue
                parent.dependents -= 1
                if parent.dependents <= 0 and not parent.live:
                    stack.append((parent, False))

    def _remember_evicted(self, oid: bytes) -> None:
        self._evicted[oid] = None
        while len(self._evicted) > self._max_evicted:
            self._evicted.popitem(last=False)
