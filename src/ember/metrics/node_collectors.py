"""Collectors of a node daemon's own state: object store, spilling, resources, failures.

Each takes the few callables it reads (the daemon's store, spiller, ledger
and lease queue) and computes its samples when scraped; nothing here runs on
a request path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ember.metrics import names
from ember.metrics.counts import FailureCounts
from ember.metrics.families import Families


class _Store(Protocol):
    capacity: int
    used: int
    entries: dict[bytes, Any]


class _SpillStats(Protocol):
    spilled_objects: int
    spilled_bytes: int
    restored_objects: int
    restored_bytes: int
    bytes_on_disk: int


class ObjectStoreCollector(Collector):
    """``ember_object_store_*`` and the spill manager's counters."""

    def __init__(
        self,
        fam: Families,
        store: _Store,
        spill_stats: Callable[[], _SpillStats],
        in_shm: bool,
    ) -> None:
        self._fam = fam
        self._store = store
        self._spill = spill_stats
        self._location = "MMAP_SHM" if in_shm else "MMAP_DISK"

    def collect(self) -> Iterator[Metric]:
        f, st = self._fam, self._store
        unsealed = sum(e.alloc for e in st.entries.values() if not e.sealed)
        sp = self._spill()
        yield f.gauge(
            names.OBJECT_STORE_MEMORY,
            "Object store memory in bytes by location (MMAP_SHM, MMAP_DISK: the arena; "
            "SPILLED: live objects in spill files) and state.",
            [
                ((self._location, "SEALED"), st.used - unsealed),
                ((self._location, "UNSEALED"), unsealed),
                (("SPILLED", "SEALED"), sp.bytes_on_disk),
            ],
            labels=("Location", "ObjectState"),
        )
        yield f.gauge(
            names.OBJECT_STORE_AVAILABLE,
            "Bytes of the node's object store not taken by objects.",
            [((), st.capacity - st.used)],
        )
        yield f.gauge(
            names.OBJECT_STORE_USED,
            "Bytes of the node's object store taken by objects.",
            [((), st.used)],
        )
        yield f.gauge(
            names.OBJECT_STORE_NUM_LOCAL_OBJECTS,
            "Objects in the node's object store.",
            [((), len(st.entries))],
        )
        yield f.counter(
            names.SPILL_REQUESTS,
            "Objects spilled to disk and restored from it since the node started.",
            [(("Spilled",), sp.spilled_objects), (("Restored",), sp.restored_objects)],
            labels=("Type",),
        )
        yield f.counter(
            names.SPILL_BYTES,
            "Bytes spilled to disk and restored from it since the node started.",
            [(("Spilled",), sp.spilled_bytes), (("Restored",), sp.restored_bytes)],
            labels=("Type",),
        )


class SchedulingCollector(Collector):
    """``ember_resources{Name,State}`` and the requests waiting for resources."""

    def __init__(
        self,
        fam: Families,
        totals: Callable[[], dict[str, float]],
        available: Callable[[], dict[str, float]],
        waiting: Callable[[], tuple[int, int]],
    ) -> None:
        self._fam = fam
        self._totals = totals
        self._available = available
        #: (lease requests queued for resources, infeasible shapes seen lately)
        self._waiting = waiting

    def collect(self) -> Iterator[Metric]:
        totals, avail = self._totals(), self._available()
        rows = []
        for name, total in sorted(totals.items()):
            if "_group_" in name:  # a placement group's bundle resources
                continue
            free = avail.get(name, 0.0)
            rows.append(((name, "USED"), max(total - free, 0.0)))
            rows.append(((name, "AVAILABLE"), free))
        yield self._fam.gauge(
            names.RESOURCES,
            "Logical resources of the node, USED or AVAILABLE.",
            rows,
            labels=("Name", "State"),
        )
        queued, infeasible = self._waiting()
        yield self._fam.gauge(
            names.UNSCHEDULEABLE_TASKS,
            "Lease requests this node cannot grant now: waiting for resources, or "
            "infeasible (no node could ever hold them).",
            [(("WaitingForResources",), queued), (("Infeasible",), infeasible)],
            labels=("Reason",),
        )


class FailureCollector(Collector):
    """Unexpected worker deaths and memory-monitor kills."""

    def __init__(self, fam: Families, counts: FailureCounts) -> None:
        self._fam = fam
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        c = self._counts
        yield self._fam.counter(
            names.UNEXPECTED_WORKER_FAILURES,
            "Worker processes that died without the node stopping them (crashes, "
            "signals from elsewhere, memory-monitor kills).",
            [((), c.unexpected_worker_failures)],
        )
        yield self._fam.counter(
            names.MEMORY_EVICTIONS,
            "Workers the memory monitor killed, by what they ran (Type: Task or Actor).",
            [((t, n), v) for (t, n), v in sorted(c.evictions.items())],
            labels=("Type", "Name"),
        )
