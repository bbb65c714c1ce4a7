"""A core worker's report of the object refs it holds (``worker.list_objects``).

``ember memory`` and ``ember.util.state.list_objects`` ask every core worker,
through its node daemon, for the refs it holds: one :class:`RefRecord` per
object id, with the reference type Ray's ``ray memory`` shows.  Nothing is
kept or computed for this until someone asks, with one exception: when
``EMBER_RECORD_REF_CREATION_SITES=1`` (Ray's ``RAY_record_ref_creation_sites``)
each new ref records where user code created it (:class:`CallSites`), which
walks the stack and so costs a few microseconds per ref.

Reference types, in Ray's order of precedence (the first that applies)::

    ACTOR_HANDLE          a handle to an actor (one row per actor)
    PINNED_IN_MEMORY      a value read from the shared-memory store (a numpy array,
                          say) still uses its extent here; listed even once the ref
                          itself is gone (``b = get(a); del a``), as Ray does
    USED_BY_PENDING_TASK  an argument of a task or actor call not finished yet
    LOCAL_REFERENCE       a live ObjectRef in this process's Python objects
    CAPTURED_IN_OBJECT    only held inside another object's value (or a return
                          in escrow), e.g. ``put([ref])`` then ``del ref``

Refs held only by remote borrowers are not listed (the borrowers list them).
The handler runs on the loop thread, which owns the memory store, the
submitters' queues and the escrow; the counts are copied under the counter's
lock.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from ember.common.ids import task_id_of
from ember.protocol.messages import CoreWorkerObjects, ListObjectsRequest, RefRecord
from ember.runtime.memory_store import MemoryStore, ObjEntry
from ember.runtime.ownership import RefCounter, RefEntry

#: the environment switch for recording where each ref was created
CALL_SITES_ENV = "EMBER_RECORD_REF_CREATION_SITES"
#: Ray's name for the same switch, honoured too
RAY_CALL_SITES_ENV = "RAY_record_ref_creation_sites"

ACTOR_HANDLE = "ACTOR_HANDLE"
PINNED_IN_MEMORY = "PINNED_IN_MEMORY"
USED_BY_PENDING_TASK = "USED_BY_PENDING_TASK"
LOCAL_REFERENCE = "LOCAL_REFERENCE"
CAPTURED_IN_OBJECT = "CAPTURED_IN_OBJECT"
UNKNOWN_STATUS = "UNKNOWN_STATUS"

#: the 4-byte index that marks an actor-handle row's id (no object uses it)
ACTOR_HANDLE_INDEX = b"\xff\xff\xff\xff"

_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call_sites_enabled(environ: Any = None) -> bool:
    env = os.environ if environ is None else environ
    return any(
        env.get(name, "0").strip() not in ("", "0", "false", "False")
        for name in (CALL_SITES_ENV, RAY_CALL_SITES_ENV)
    )


def reference_type(
    *, actor_handle: bool, pinned: bool, submitted: int, local: int, captured: int
) -> str:
    """The type ``ray memory`` shows for a ref with these counts (see the module doc)."""
    if actor_handle:
        return ACTOR_HANDLE
    if pinned:
        return PINNED_IN_MEMORY
    if submitted > 0:
        return USED_BY_PENDING_TASK
    if local > 0:
        return LOCAL_REFERENCE
    if captured > 0:
        return CAPTURED_IN_OBJECT
    return UNKNOWN_STATUS


def _user_frame(frame: Any) -> tuple[str, str]:
    """(what ember was doing, "file:function:line" of the first frame outside ember)."""
    kind = ""
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_EMBER_DIR):
            code = frame.f_code
            return kind, f"{path}:{code.co_name}:{frame.f_lineno}"
        name, module = frame.f_code.co_name, os.path.basename(path)
        if not kind:
            if name == "put" and module == "objects.py":
                kind = "(put object)"
            elif name in ("_remote", "remote") and module == "actor.py":
                kind = "(actor call)"
            elif name in ("_remote", "remote"):
                kind = "(task call)"
        frame = frame.f_back
    return kind, ""


def _probe_baseline() -> int:
    held = [object()]
    for inner in held:
        return sys.getrefcount(inner)
    raise AssertionError("unreachable")


#: references to an object held once in a list, seen from a loop over that list
_BASELINE = _probe_baseline()


def only_inside(holders: list[list[Any]]) -> Counter[bytes]:
    """Per object id, the ObjectRef instances in ``holders`` that nothing else holds.

    A value that contains a ref keeps that very ``ObjectRef`` instance (its
    ``contained`` list), so the local count alone cannot tell whether user code
    still holds it too; the instance's own reference count can: an instance held
    only by these lists is "captured in an object", as Ray reports it.
    """
    seen: Counter[int] = Counter()
    for held in holders:
        for inner in held:
            seen[id(inner)] += 1
    out: Counter[bytes] = Counter()
    for held in holders:
        for inner in held:
            if sys.getrefcount(inner) <= _BASELINE + seen[id(inner)] - 1:
                out[getattr(inner, "_id", b"")] += 1
    return out


def in_use(mapped: Any, entries: dict[bytes, ObjEntry]) -> dict[bytes, int]:
    """Bytes of each mapped extent that a value still uses, by object id.

    ``mapped`` holds the process's extents weakly (``StoredObjects.mapped``); an
    entry of the memory store may keep one as its cache (``ObjEntry.mapping``).
    Beyond those, any reference comes from a value read out of it (a numpy
    array, a memoryview): such an object is pinned in memory, as Ray reports it.
    """
    out: dict[bytes, int] = {}
    for oid in list(mapped.keys()):
        m = mapped.get(oid)
        if m is None:
            continue
        e = entries.get(oid)
        cached = 1 if e is not None and e.mapping is m else 0
        # ``m`` here and getrefcount's argument: 2
        if sys.getrefcount(m) > 2 + cached:
            out[oid] = _nbytes(m)
        del m
    return out


def _nbytes(m: Any) -> int:
    try:
        return ctypes.sizeof(m)
    except TypeError:
        return len(m)


class CallSites:
    """Where each ref of this process was created, recorded as refs are counted.

    :meth:`install` wraps the counter's ``add_local`` and ``on_deserialized`` on
    that one instance, so without the switch nothing on the hot path changes.
    Sites of refs that are gone are pruned as the table grows.
    """

    def __init__(self, refs: RefCounter, in_task: Callable[[], str]) -> None:
        """``in_task()``: the name of the task running on this thread, or ""."""
        self._refs = refs
        self._in_task = in_task
        self.sites: dict[bytes, str] = {}

    def install(self) -> None:
        refs = self._refs
        add_local, on_deserialized = refs.add_local, refs.on_deserialized

        def add_local_recorded(oid: bytes, owner: Any) -> None:
            add_local(oid, owner)
            if oid not in self.sites:
                self._record(oid, "")

        def on_deserialized_recorded(ref: Any) -> None:
            on_deserialized(ref)
            if ref._id not in self.sites:
                task = self._in_task()
                self._record(ref._id, f"(deserialize task arg) {task}" if task else "")

        refs.add_local = add_local_recorded  # type: ignore[method-assign]
        refs.on_deserialized = on_deserialized_recorded  # type: ignore[method-assign]

    def _record(self, oid: bytes, site: str) -> None:
        if not site:
            kind, where = _user_frame(sys._getframe(1))
            site = f"{kind} | {where}" if kind and where else (kind or where)
        sites = self.sites
        sites[oid] = site or "(unknown)"
        if len(sites) > 4096 and len(sites) > 2 * len(self._refs.entries):
            live = self._refs.entries
            for gone in [o for o in sites if o not in live]:
                del sites[gone]

    def get(self, oid: bytes) -> str:
        return self.sites.get(oid, "")


def pending_statuses(
    tasks: dict[bytes, Any], actor_states: Iterable[Any], args_pending: Any
) -> dict[bytes, tuple[str, int]]:
    """The status of every task and actor call this process submitted and awaits.

    ``tasks``: ``TaskSubmitter.tasks``; ``actor_states``: the ``ActorState`` of
    each actor called; ``args_pending(ref_args)``: the owned arguments not ready.
    """
    out: dict[bytes, tuple[str, int]] = {}
    for tid, t in tasks.items():
        if t.worker is not None:
            status = "SUBMITTED_TO_WORKER"
        elif args_pending(t.spec.ref_args):
            status = "PENDING_ARGS_AVAIL"
        else:
            status = "PENDING_NODE_ASSIGNMENT"
        out[tid] = (status, t.spec.attempt + 1)
    for st in actor_states:
        for call in st.queue:
            out[call.spec.task_id] = ("PENDING_ARGS_AVAIL", call.spec.attempt + 1)
        for tid, call in st.inflight.items():
            out[tid] = ("SUBMITTED_TO_WORKER", call.spec.attempt + 1)
    return out


def _size(obj: ObjEntry | None) -> int:
    """Bytes of a ready value (inline: the pickle and its buffers), else -1."""
    if obj is None or not obj.ready:
        return -1
    if obj.data is None:
        return obj.size
    return len(obj.data) + sum(memoryview(b).nbytes for b in obj.bufs)


class RefReport:
    """Answers ``worker.list_objects`` for one core worker."""

    def __init__(
        self,
        refs: RefCounter,
        store: MemoryStore,
        escrow: dict[bytes, list[Any]],
        statuses: Callable[[], dict[bytes, tuple[str, int]]],
        actor_handles: Callable[[], list[bytes]],
        identity: Callable[[], tuple[bytes, bytes, str, bool]],
        call_sites: CallSites | None = None,
        mapped: Any = None,
    ) -> None:
        """``identity()``: (worker id, node id, node IP, is driver) of this process;
        ``mapped``: its live extents by object id (``StoredObjects.mapped``)."""
        self._mapped = {} if mapped is None else mapped
        self._refs = refs
        self._store = store
        self._escrow = escrow
        self._statuses = statuses
        self._actor_handles = actor_handles
        self._identity = identity
        self.call_sites = call_sites

    def records(self, limit: int) -> tuple[list[RefRecord], int]:
        """Up to ``limit`` records (largest first) and how many there are in all."""
        entries = self._refs.snapshot()
        holders = [e.contained for _oid, e in entries if e.contained]
        holders += list(self._escrow.values())
        captured = only_inside(holders)
        statuses = self._statuses()
        sites = self.call_sites
        used = in_use(self._mapped, self._store.entries)
        out = [
            r
            for oid, e in entries
            if (r := self._record(oid, e, captured[oid], oid in used, statuses, sites))
            is not None
        ]
        counted = {oid for oid, _e in entries}
        for oid, nbytes in used.items():
            if oid not in counted:  # its refs are gone; a value still uses it
                out.append(
                    RefRecord(
                        oid=oid,
                        size=nbytes,
                        reference_type=PINNED_IN_MEMORY,
                        call_site=sites.get(oid) if sites else "",
                        stored=True,
                        owned=False,
                    )
                )
        for actor_id in self._actor_handles():
            out.append(
                RefRecord(
                    oid=actor_id + ACTOR_HANDLE_INDEX,
                    size=-1,
                    reference_type=ACTOR_HANDLE,
                    task_status="NIL",
                    local_refs=1,
                )
            )
        total = len(out)
        if total > limit:
            out.sort(key=lambda r: r.size, reverse=True)
            del out[limit:]
        return out, total

    def _record(
        self,
        oid: bytes,
        e: RefEntry,
        captured: int,
        pinned: bool,
        statuses: dict[bytes, tuple[str, int]],
        sites: CallSites | None,
    ) -> RefRecord | None:
        obj = self._store.entries.get(oid)
        stored = obj is not None and obj.stored()
        local = max(e.local - captured, 0)
        if not pinned and local <= 0 and e.submitted <= 0 and captured <= 0:
            return None  # held only for remote borrowers: they list it
        status, attempt = "NIL", 1
        if e.owned:
            known = statuses.get(task_id_of(oid))
            if known is not None:
                status, attempt = known
            elif obj is not None and obj.ready:
                status = "FAILED" if obj.is_error else "FINISHED"
        return RefRecord(
            oid=oid,
            size=_size(obj),
            reference_type=reference_type(
                actor_handle=False,
                pinned=pinned,
                submitted=e.submitted,
                local=local,
                captured=captured,
            ),
            call_site=sites.get(oid) if sites else "",
            task_status=status,
            attempt_number=attempt,
            node_id=obj.node_id if stored and obj is not None else b"",
            stored=stored,
            owned=e.owned,
            local_refs=local,
            submitted_refs=e.submitted,
            borrowers=len(e.borrowers),
        )

    def h_list_objects(
        self, conn: Any, req: ListObjectsRequest, bufs: Any
    ) -> CoreWorkerObjects:
        worker_id, node_id, ip, is_driver = self._identity()
        refs, total = self.records(max(req.limit, 0))
        return CoreWorkerObjects(
            worker_id=worker_id,
            pid=os.getpid(),
            is_driver=is_driver,
            ip=ip,
            node_id=node_id,
            refs=refs,
            total=total,
            call_sites=self.call_sites is not None,
        )
