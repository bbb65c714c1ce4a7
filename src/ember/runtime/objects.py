"""The in-process memory store and object access: put, get, wait, pin, free.

Small values live inline in ``entries`` (the owner's memory store, and a
borrower's cache).  Large values live in the node's shared-memory arena; an
entry then records which node holds the primary copy.  Reading a stored
value pins it at the node daemon and maps it read-only; the entry keeps that
mapping so later reads of the same object cost no round trip, and a finalizer
on the mapping unpins it once the entry is dropped and every view (e.g. a
numpy array) is gone.

Threads: ``entries`` is mutated on the loop thread, except that a new entry
may be inserted from a user thread (nobody can wait on an id before it is
inserted).  User threads read ready entries directly (the fast path of get).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.common.ids import new_task_id, object_id_for
from ember.object_store.shm import readonly_view
from ember.protocol.messages import (
    Address,
    CreateObjectRequest,
    GetObjectReply,
    GetObjectRequest,
    GetObjectsRequest,
    ObjectIdsRequest,
    PullObjectRequest,
    ReturnObject,
    SealObjectRequest,
)
from ember.rpc.errors import RemoteError, RpcError
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import (
    SerializedValue,
    deserialize,
    dumps_plain,
    read_layout,
    serialize,
    write_layout,
)

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker

logger = logging.getLogger(__name__)


class ObjEntry:
    """One object in the memory store."""

    __slots__ = (
        "bufs",
        "callbacks",
        "copies",
        "data",
        "is_error",
        "mapping",
        "node_id",
        "owner",
        "ready",
        "size",
        "sync_waiters",
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
        self.waiters: list[asyncio.Future[None]] | None = None
        #: plain callables run on the loop thread once ready (cheaper than waiters)
        self.callbacks: list[Any] | None = None
        #: user threads blocked in get() on this entry (counted down on the loop thread)
        self.sync_waiters: list[_Countdown] | None = None
        #: other nodes holding secondary copies (owner side), freed with the primary
        self.copies: list[bytes] | None = None
        #: the owner, for a borrower's cached entry
        self.owner: Address | None = None

    def stored(self) -> bool:
        return self.ready and self.data is None and not self.is_error


class Objects:
    """Object access for one core worker."""

    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self.entries: dict[bytes, ObjEntry] = {}
        self._pending_release: list[bytes] = []
        self._sync_lock = threading.Lock()
        self._release_scheduled = False

    # -- producing ------------------------------------------------------------------
    def add_pending(self, oid: bytes) -> None:
        self.entries[oid] = ObjEntry()

    def _set(self, oid: bytes, fill: Any) -> ObjEntry | None:
        e = self.entries.get(oid)
        if e is None:
            if not self.cw.refs.has(oid):
                return None  # nobody references it any more
            e = self.entries[oid] = ObjEntry()
        fill(e)
        with self._sync_lock:
            e.ready = True
            if e.sync_waiters:
                for countdown in e.sync_waiters:
                    countdown.done_one()
                e.sync_waiters = None
        if e.waiters:
            for w in e.waiters:
                if not w.done():
                    w.set_result(None)
            e.waiters = None
        if e.callbacks:
            callbacks, e.callbacks = e.callbacks, None
            for cb in callbacks:
                cb()
        return e

    def when_all_ready(self, oids: list[bytes], cb: Any) -> None:
        """Loop thread: call ``cb()`` once every one of ``oids`` is ready (or unknown).

        A failed object is ready too.  Costs a callback per id, not a coroutine.
        """
        left = [len(oids)]

        def one_ready() -> None:
            left[0] -= 1
            if left[0] == 0:
                cb()

        for oid in oids:
            e = self.entries.get(oid)
            if e is None or e.ready:
                one_ready()
            else:
                if e.callbacks is None:
                    e.callbacks = []
                e.callbacks.append(one_ready)

    def set_inline(
        self, oid: bytes, data: Any, bufs: list[Any], is_error: bool = False
    ) -> None:
        def fill(e: ObjEntry) -> None:
            e.data, e.bufs, e.is_error, e.size = data, bufs, is_error, len(data)

        self._set(oid, fill)

    def set_stored(self, oid: bytes, node_id: bytes, size: int) -> None:
        def fill(e: ObjEntry) -> None:
            e.data, e.node_id, e.size = None, node_id, size

        if self._set(oid, fill) is None:
            # The result arrived after every ref was dropped: free it at once.
            self._free_stored([oid], node_id)

    def set_error(self, oid: bytes, error: BaseException) -> None:
        self.set_inline(oid, dumps_plain(error), [], is_error=True)

    def set_return(self, obj: ReturnObject, frames: list[Any], pos: int) -> int:
        """Record one returned object from a reply's frames; return the next position."""
        if obj.node_id:
            self.set_stored(obj.oid, obj.node_id, obj.size)
            return pos
        data = frames[pos]
        bufs = frames[pos + 1 : pos + obj.nbufs]
        self.set_inline(obj.oid, data, bufs, obj.is_error)
        return pos + obj.nbufs

    def pending_deps(self, ref_args: list[Any]) -> list[bytes]:
        """Ids among ``ref_args`` that we own and that are not ready yet."""
        out = []
        for r in ref_args:
            e = self.entries.get(r.oid)
            if e is not None and not e.ready:
                out.append(r.oid)
        return out

    def inline_args(self, spec: Any, frames: list[Any]) -> list[Any]:
        """Loop thread: carry the values of small ready ref arguments we own in the push.

        The worker then needs no round trip back to us for them (as Ray inlines
        small resolved dependencies).  Values holding refs, errors and stored
        values are left for the worker to fetch.
        """
        if not spec.ref_args:
            return frames
        inlined: list[int] = []
        extra: list[Any] = []
        me = self.cw.worker_id
        for r in spec.ref_args:
            e = self.entries.get(r.oid)
            if (
                e is not None
                and e.ready
                and e.data is not None
                and not e.is_error
                and r.owner is not None
                and r.owner.worker_id == me
                and not self.cw.refs.contains_refs(r.oid)
            ):
                extra.append(e.data)
                extra.extend(e.bufs)
                inlined.append(1 + len(e.bufs))
            else:
                inlined.append(-1)
        if not extra:
            spec.inlined = []
            return frames
        spec.inlined = inlined
        return [*frames, *extra]

    # -- put ------------------------------------------------------------------------
    def put(self, value: Any) -> ObjectRef:
        if isinstance(value, ObjectRef):
            raise TypeError(
                "Calling put() on an ObjectRef is not allowed: put() stores a value. To "
                "pass a reference around, put it inside a list or dict, e.g. put([ref])."
            )
        ser = serialize(value)
        oid = object_id_for(new_task_id(), 0)
        ref = ObjectRef(oid, self.cw.address)
        self.store_serialized(oid, ser)
        if ser.contained:
            self.cw.refs.set_contained(oid, ser.contained)
        return ref

    def store_serialized(self, oid: bytes, ser: SerializedValue) -> None:
        """Store a value we own, inline or in the local arena (user thread)."""
        if ser.total_bytes() < self.cw.config.inline_threshold_bytes:
            e = ObjEntry()
            e.data = ser.data
            e.bufs = [bytes(memoryview(b).cast("B")) for b in ser.buffers]
            e.size = len(ser.data)
            e.ready = True
            self.entries[oid] = e
            return
        size = ser.layout_size()
        offset = self.cw.run(self.create_in_store(oid, size, ser, pin=True))
        e = ObjEntry()
        e.node_id, e.size, e.ready = self.cw.node_id, size, True
        self.entries[oid] = e
        # The seal pinned it for us: keep a read-only mapping so that a get by
        # the owner costs no round trip (unpinned when the ref and views go).
        self._map(oid, e, offset, size)

    async def create_in_store(
        self, oid: bytes, size: int, ser: SerializedValue, pin: bool = False
    ) -> int:
        """Write ``ser`` into a new extent of the local arena and seal it; its offset."""
        node = self.cw.node_conn
        try:
            reply, _ = await node.call(
                "node.create_object", CreateObjectRequest(oid=oid, size=size)
            )
        except RemoteError as err:
            if err.is_a(MemoryError):
                raise exc_mod.ObjectStoreFullError(err.remote_message) from None
            raise
        view = self.cw.arena.writable(reply.offset, size)
        # Copy outside the loop thread: it may be gigabytes.
        await asyncio.get_running_loop().run_in_executor(None, write_layout, ser, view)
        view.release()
        await node.call("node.seal_object", SealObjectRequest(oid=oid, pin=pin))
        return reply.offset

    # -- get --------------------------------------------------------------------------
    def get(self, refs: list[ObjectRef], timeout: float | None) -> list[Any]:
        entries: list[ObjEntry | None] = []
        for r in refs:
            e = self.entries.get(r._id)
            entries.append(
                e
                if e is not None and e.ready and (e.data is not None or e.node_id)
                else None
            )
        if any(e is None for e in entries) and timeout != 0:
            # Fast path: every ref is ours and pending here; wait on an event
            # the loop sets, without a coroutine round trip through the loop.
            local = [self.entries.get(r._id) for r in refs]
            if all(e is not None for e in local) and self._wait_sync(local, timeout):  # type: ignore[arg-type]
                entries = local
        if any(e is None or not e.ready for e in entries):
            blocked = self.cw.is_worker_in_task()
            if blocked:
                self.cw.loop_thread.call(self.cw.notify_node, "node.worker_blocked")
            try:
                resolved = self.cw.run(self.resolve_many(refs, timeout))
                entries = list(resolved)
            finally:
                if blocked:
                    self.cw.loop_thread.call(
                        self.cw.notify_node, "node.worker_unblocked"
                    )
        return [self.materialize(r, e) for r, e in zip(refs, entries, strict=True)]  # type: ignore[arg-type]

    def _wait_sync(self, entries: list[ObjEntry], timeout: float | None) -> bool:
        """Wait for owned entries on a threading.Event; False if the deadline passed."""
        if self.cw.is_worker_in_task():
            return False  # the blocked-worker protocol runs in the slow path
        countdown = _Countdown()
        with self._sync_lock:
            for e in entries:
                if not e.ready:
                    if e.sync_waiters is None:
                        e.sync_waiters = []
                    e.sync_waiters.append(countdown)
                    countdown.n += 1
            if countdown.n == 0:
                return True
        return countdown.wait(timeout)

    async def resolve_many(
        self, refs: list[ObjectRef], timeout: float | None
    ) -> list[ObjEntry]:
        coros = [self.resolve(r._id, r._owner) for r in refs]
        try:
            async with asyncio.timeout(timeout):
                return list(await asyncio.gather(*coros))
        except TimeoutError:
            raise exc_mod.GetTimeoutError(
                f"Get timed out: some object(s) were not ready after {timeout} seconds."
            ) from None

    async def resolve(self, oid: bytes, owner: Address | None) -> ObjEntry:
        """Wait until ``oid`` is ready here (owned) or at its owner (borrowed)."""
        e = self.entries.get(oid)
        if e is not None:
            if not e.ready:
                w = asyncio.get_running_loop().create_future()
                if e.waiters is None:
                    e.waiters = []
                e.waiters.append(w)
                await w
            return e
        if owner is None or owner.worker_id == self.cw.worker_id:
            raise exc_mod.ObjectLostError(
                oid.hex(),
                "",
                "",
                f"Object {oid.hex()} is lost: its value was freed "
                "(no reference to it remained) or never existed.",
            )
        return await self._fetch_from_owner(oid, owner)

    async def _fetch_from_owner(self, oid: bytes, owner: Address) -> ObjEntry:
        try:
            conn = await self.cw.connect_to(owner)
            reply, frames = await conn.call(
                "worker.get_object", GetObjectRequest(oid=oid)
            )
        except RpcError as err:
            raise exc_mod.OwnerDiedError(
                oid.hex(),
                owner.tcp,
                "",
                f"Object {oid.hex()} is lost because its owner (worker "
                f"{owner.worker_id.hex()[:8]} at {owner.tcp}) died or is unreachable ({err}). "
                "Objects are owned by the process that created them; keep the owner alive.",
            ) from err
        return self.cache_reply(oid, reply, frames, owner)

    def cache_reply(
        self,
        oid: bytes,
        reply: GetObjectReply,
        frames: list[Any],
        owner: Address | None = None,
    ) -> ObjEntry:
        if reply.status != "READY" or reply.obj is None:
            raise exc_mod.ObjectLostError(
                oid.hex(),
                "",
                "",
                f"Object {oid.hex()} was freed by its owner or never existed.",
            )
        e = ObjEntry()
        e.owner = owner
        obj = reply.obj
        if obj.node_id:
            e.node_id, e.size = obj.node_id, obj.size
        else:
            e.data, e.bufs, e.is_error, e.size = (
                frames[0],
                frames[1 : obj.nbufs],
                obj.is_error,
                0,
            )
        e.ready = True
        if self.cw.refs.has(oid):
            self.entries[oid] = e  # cache while we borrow it
        return e

    def materialize(self, ref: ObjectRef, e: ObjEntry) -> Any:
        """The value of a ready entry (user thread); raises stored errors."""
        if e.data is not None:
            value = deserialize(e.data, e.bufs)
        else:
            value = self._read_stored(ref._id, e)
        if e.is_error:
            raise _as_raisable(value)
        return value

    def _read_stored(self, oid: bytes, e: ObjEntry) -> Any:
        m = e.mapping
        if m is None:
            loc = self.cw.run(self.pin_here(oid, e))
            m = self._map(oid, e, loc.offset, loc.size)
        data, bufs = read_layout(readonly_view(m))
        return deserialize(data, bufs)

    async def pin_here(self, oid: bytes, e: ObjEntry) -> Any:
        """Pin a stored object on this node, pulling a copy from its node first if needed."""
        if e.node_id != self.cw.node_id:
            try:
                return await self.pin(oid)
            except exc_mod.ObjectLostError:
                pass  # no local copy yet
            try:
                await self.cw.node_conn.call(
                    "node.pull_object", PullObjectRequest(oid=oid, node_id=e.node_id)
                )
            except (RpcError, OSError) as err:
                raise exc_mod.ObjectLostError(
                    oid.hex(),
                    "",
                    "",
                    f"Object {oid.hex()} could not be fetched from node {e.node_id.hex()[:8]}, "
                    f"which held its only copy: {err}",
                ) from err
            self._record_copy(oid, e)
        return await self.pin(oid)

    def _record_copy(self, oid: bytes, e: ObjEntry) -> None:
        me = self.cw.node_id
        if e.owner is None or e.owner.worker_id == self.cw.worker_id:
            self.add_copy(oid, me)
        else:
            self.cw.sup.spawn(self._tell_owner(e.owner, oid, me), name="add-location")

    async def _tell_owner(self, owner: Address, oid: bytes, node_id: bytes) -> None:
        try:
            conn = await self.cw.connect_to(owner)
            conn.notify(
                "worker.add_location", PullObjectRequest(oid=oid, node_id=node_id)
            )
        except RpcError:
            pass

    def add_copy(self, oid: bytes, node_id: bytes) -> None:
        e = self.entries.get(oid)
        if e is None:
            return
        if e.copies is None:
            e.copies = []
        if node_id not in e.copies and node_id != e.node_id:
            e.copies.append(node_id)

    async def pin(self, oid: bytes) -> Any:
        reply, _ = await self.cw.node_conn.call(
            "node.get_objects", GetObjectsRequest(oids=[oid])
        )
        loc = reply.found[0]
        if loc is None:
            raise exc_mod.ObjectLostError(
                oid.hex(),
                "",
                "",
                f"Object {oid.hex()} is no longer in the object store.",
            )
        return loc

    def _map(self, oid: bytes, e: ObjEntry, offset: int, size: int) -> Any:
        """Map a pinned extent; the entry keeps the mapping while it is cached here."""
        m = self.cw.arena.extent(offset, size)
        weakref.finalize(m, self._unpin_later, oid)
        if self.entries.get(oid) is e:
            e.mapping = m  # a racing reader's extent is simply dropped (own pin)
        return m

    async def get_one_async(self, ref: ObjectRef) -> Any:
        e = await self.resolve(ref._id, ref._owner)
        if e.data is None and not e.is_error:
            m = e.mapping
            if m is None:
                loc = await self.pin_here(ref._id, e)
                m = self._map(ref._id, e, loc.offset, loc.size)
            data, bufs = read_layout(readonly_view(m))
            value = deserialize(data, bufs)
        else:
            value = deserialize(e.data, e.bufs)
        if e.is_error:
            raise _as_raisable(value)
        return value

    def _unpin_later(self, oid: bytes) -> None:
        self._pending_release.append(oid)
        if not self._release_scheduled:
            self._release_scheduled = True
            self.cw.loop_thread.call_lazy(self._flush_unpins)

    def _flush_unpins(self) -> None:
        self._release_scheduled = False
        oids, self._pending_release = self._pending_release, []
        if oids and not self.cw.node_conn.is_closed():
            self.cw.node_conn.notify(
                "node.release_objects", ObjectIdsRequest(oids=oids)
            )

    # -- wait -------------------------------------------------------------------------
    async def wait(
        self, refs: list[ObjectRef], num_returns: int, timeout: float | None
    ) -> list[bool]:
        done = [False] * len(refs)
        count = 0
        for i, r in enumerate(refs):
            e = self.entries.get(r._id)
            if e is not None and e.ready:
                done[i] = True
                count += 1
        if count >= num_returns:
            return done
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def mark(i: int) -> Any:
            def cb(t: asyncio.Task[Any]) -> None:
                nonlocal count
                if t.cancelled():
                    return
                done[i] = True  # ready, or failed (an error is a result too)
                count += 1
                if count >= num_returns and not finished.done():
                    finished.set_result(None)

            return cb

        tasks = []
        for i, r in enumerate(refs):
            if not done[i]:
                t = loop.create_task(self.resolve(r._id, r._owner))
                t.add_done_callback(mark(i))
                tasks.append(t)
        try:
            await asyncio.wait_for(finished, timeout)
        except TimeoutError:
            pass
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
        return done

    # -- release ------------------------------------------------------------------------
    def release(self, oid: bytes, owned: bool) -> None:
        """Every reference is gone (loop thread): drop our copy; an owner frees it everywhere."""
        e = self.entries.pop(oid, None)
        if owned and e is not None and e.node_id and e.data is None:
            self._free_stored([oid], e.node_id)
            for node_id in e.copies or ():
                self._free_stored([oid], node_id)

    def _free_stored(self, oids: list[bytes], node_id: bytes) -> None:
        if node_id == self.cw.node_id:
            if not self.cw.node_conn.is_closed():
                self.cw.node_conn.notify(
                    "node.free_objects", ObjectIdsRequest(oids=oids)
                )
            return
        self.cw.sup.spawn(self._free_remote(oids, node_id), name="free-remote")

    async def _free_remote(self, oids: list[bytes], node_id: bytes) -> None:
        try:
            conn = await self.cw.connect_node(
                node_id, await self.cw.node_address(node_id)
            )
            conn.notify("node.free_objects", ObjectIdsRequest(oids=oids))
        except RpcError:
            pass  # that node is gone, and its copy with it


def _as_raisable(value: Any) -> BaseException:
    if isinstance(value, exc_mod.TaskError):
        return value.as_instanceof_cause()
    if isinstance(value, BaseException):
        return value
    return exc_mod.EmberSystemError(f"bad error value {value!r}")


class _Countdown:
    """Wakes one blocked get() when the last of its entries is ready.

    ``n`` changes only under ``Objects._sync_lock``.
    """

    __slots__ = ("lock", "n")

    def __init__(self) -> None:
        self.n = 0
        # A bare lock held until the count reaches zero: cheaper than an Event
        # (no condition variable, no per-wait waiter lock).
        self.lock = threading.Lock()
        self.lock.acquire()

    def done_one(self) -> None:
        self.n -= 1
        if self.n == 0:
            self.lock.release()

    def wait(self, timeout: float | None) -> bool:
        return self.lock.acquire(timeout=-1 if timeout is None else timeout)
