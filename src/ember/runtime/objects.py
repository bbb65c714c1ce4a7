"""Object access of one core worker: put, get, wait, and serving values to borrowers.

Values and readiness live in the pure :class:`~ember.runtime.memory_store.MemoryStore`
(small values inline: the owner's copy, or a borrower's cache); large values
live in the node's arena (:class:`~ember.runtime.stored.StoredObjects`).  This
module adds the I/O: fetching a borrowed value from its owner, the loop timer
that drives the store's deadlines, and the blocked-worker protocol.

Threads: ``entries`` is mutated on the loop thread, except that a new entry
may be inserted from a user thread (nobody can wait on an id before it is
inserted).  User threads read ready entries directly (the fast path of get),
and a user thread blocked in get waits on a bare lock that the loop releases.

Deadlines: a ``get``/``wait`` computes its deadline once; the thread-side wait
and the loop-side resolve both end at it (the store's :class:`Waiter`).

Lost copies: a read whose stored copy cannot be fetched (its node died) raises
``CopyLostError``; ``get`` then has the owner relocate or rebuild the object
(:meth:`Objects.relocate`: ``recovery.py`` for our own objects, a
``worker.get_object`` naming the lost node for borrowed ones) and reads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ember import exceptions as exc_mod
from ember.common.config import Config
from ember.common.ids import new_task_id, object_id_for
from ember.protocol.messages import (
    Address,
    GetObjectReply,
    GetObjectRequest,
    ReturnObject,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.runtime import unhandled_errors
from ember.runtime.lineage import Lineage
from ember.runtime.links import Links
from ember.runtime.memory_store import READY, MemoryStore, ObjEntry, Waiter
from ember.runtime.object_ref import ObjectRef
from ember.runtime.ownership import RefCounter
from ember.runtime.recovery import Recovery, lost_error
from ember.runtime.serialization import (
    SerializedValue,
    deserialize,
    dumps_plain,
    serialize,
)
from ember.runtime.stored import CopyLostError, StoredObjects

#: how many times one get relocates a lost object before it gives up
_MAX_RELOCATIONS = 20


class Objects:
    """Object access for one core worker."""

    def __init__(
        self,
        store: MemoryStore,
        stored: StoredObjects,
        refs: RefCounter,
        links: Links,
        config: Config,
        in_task: Callable[[], bool],
    ) -> None:
        """``in_task()``: whether this thread runs a normal task (which holds a CPU)."""
        self.store = store
        self.stored = stored
        self.entries = store.entries
        self._refs = refs
        self._links = links
        self._config = config
        self._in_task = in_task
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # the stored-object calls other components make
        self.create_in_store = stored.create_in_store
        self.add_copy = stored.add_copy
        #: lineage of the tasks we submitted, and the rebuilding of lost objects
        lineage = Lineage(config.max_lineage_bytes, on_unpin=refs.remove_submitted)
        self.recovery = Recovery(store, lineage, refs, links, self.set_error)

    # -- producing (loop thread) ------------------------------------------------------
    def add_pending(self, oid: bytes) -> None:
        self.entries[oid] = ObjEntry()

    def set_inline(
        self, oid: bytes, data: Any, bufs: list[Any], is_error: bool = False
    ) -> None:
        self.store.set_inline(oid, data, bufs, is_error)

    def set_error(self, oid: bytes, error: BaseException) -> None:
        data = dumps_plain(error)
        if self.store.set_inline(oid, data, [], is_error=True) is None:
            unhandled_errors.report(data, [])

    def set_value(self, oid: bytes, ser: SerializedValue) -> None:
        """Fill our pending entry ``oid`` with a small value made here (loop thread);
        the refs inside it live as long as it does."""
        bufs = [bytes(memoryview(b).cast("B")) for b in ser.buffers]
        self.store.set_inline(oid, ser.data, bufs)
        if ser.contained:
            self._refs.set_contained(oid, ser.contained)

    def set_return(self, obj: ReturnObject, frames: list[Any], pos: int) -> int:
        """Record one returned object from a reply's frames; return the next position."""
        if obj.node_id:
            if self.store.set_stored(obj.oid, obj.node_id, obj.size) is None:
                # The result arrived after every ref was dropped: free it at once.
                self.stored.free_at([obj.oid], obj.node_id)
            return pos
        data = frames[pos]
        bufs = frames[pos + 1 : pos + obj.nbufs]
        e = self.store.set_inline(obj.oid, data, bufs, obj.is_error)
        if e is None and obj.is_error:  # the caller dropped the ref before it failed
            unhandled_errors.report(data, bufs)
        return pos + obj.nbufs

    # -- put ------------------------------------------------------------------------
    def put(self, value: Any) -> ObjectRef:
        if isinstance(value, ObjectRef):
            raise TypeError(
                "Calling put() on an ObjectRef is not allowed: put() stores a value. To "
                "pass a reference around, put it inside a list or dict, e.g. put([ref])."
            )
        ser = serialize(value)
        oid = object_id_for(new_task_id(), 0)
        ref = ObjectRef(oid, self._links.address)
        self.store_serialized(oid, ser)
        if ser.contained:
            self._refs.set_contained(oid, ser.contained)
        return ref

    def store_serialized(self, oid: bytes, ser: SerializedValue) -> None:
        """Store a value we own, inline or in the local arena (user thread)."""
        if ser.total_bytes() < self._config.inline_threshold_bytes:
            e = ObjEntry()
            e.data = ser.data
            e.bufs = [bytes(memoryview(b).cast("B")) for b in ser.buffers]
            e.size = len(ser.data)
            e.ready = True
            self.entries[oid] = e
            return
        size = ser.layout_size()
        links = self._links
        offset = links.run(self.stored.create_in_store(oid, size, ser, pin=True))
        e = ObjEntry()
        e.node_id, e.size, e.ready = links.node_id, size, True
        self.entries[oid] = e
        # The seal pinned it for us: keep a read-only mapping so that a get by
        # the owner costs no round trip (unpinned when the ref and views go).
        self.stored.map(oid, e, offset, size)

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
        if any(e is None for e in entries):
            entries = self._wait(refs, self.store.deadline(timeout), timeout)  # type: ignore[assignment]
        try:
            return [self.materialize(r, e) for r, e in zip(refs, entries, strict=True)]  # type: ignore[arg-type]
        except CopyLostError as lost:
            return self._get_after_loss(refs, timeout, lost)

    def _get_after_loss(
        self, refs: list[ObjectRef], timeout: float | None, lost: CopyLostError
    ) -> list[Any]:
        """A copy was lost: have it relocated or rebuilt, wait for it, read again."""
        deadline = self.store.deadline(timeout)
        for _ in range(_MAX_RELOCATIONS):
            ref = next(r for r in refs if r._id.hex() == lost.object_ref_hex)
            self._links.run(self.relocate(ref, lost.node_id))
            entries = self._wait(refs, deadline, timeout)
            try:
                return [
                    self.materialize(r, e) for r, e in zip(refs, entries, strict=True)
                ]
            except CopyLostError as again:
                lost = again
        raise lost

    async def relocate(self, ref: ObjectRef, node_id: bytes) -> None:
        """Loop thread: the copy of ``ref`` at ``node_id`` is gone; find or make another."""
        owner = ref._owner
        if owner is None or owner.worker_id == self._links.worker_id:
            await self.recovery.lost_if_gone(ref._id, node_id)
        else:  # the owner knows where else it is, or rebuilds it
            await self._fetch_from_owner(ref._id, owner, node_id)

    def _wait(
        self, refs: list[ObjectRef], deadline: float | None, timeout: float | None
    ) -> list[ObjEntry]:
        local = [self.entries.get(r._id) for r in refs]
        in_task = self._in_task()
        if timeout != 0 and not in_task and all(e is not None for e in local):
            # Every ref is ours: wait on a lock the loop releases, without a
            # coroutine round trip.  Its deadline is the whole get's.
            if not self._wait_sync(local, deadline):  # type: ignore[arg-type]
                raise _timeout_error(timeout)
            return local  # type: ignore[return-value]
        links = self._links
        if in_task:
            links.loop_thread.call(links.notify_node, "node.worker_blocked")
        try:
            return links.run(self.resolve_many(refs, deadline, timeout))
        finally:
            if in_task:
                links.loop_thread.call(links.notify_node, "node.worker_unblocked")

    def _wait_sync(self, entries: list[ObjEntry], deadline: float | None) -> bool:
        """Wait for owned entries on a bare lock; False if the deadline passed."""
        lock = threading.Lock()
        lock.acquire()
        store = self.store
        w = store.wait_for_entries(entries, lock.release, deadline)
        if w is None or w.state == READY:
            return True
        left = store.remaining(deadline)
        if lock.acquire(timeout=-1 if left is None else left):
            return True
        return not store.cancel(w)  # it may have become ready just now

    async def resolve_many(
        self,
        refs: list[ObjectRef],
        deadline: float | None,
        timeout: float | None = None,
    ) -> list[ObjEntry]:
        """Loop thread: wait until every ref is ready here or fetched, by ``deadline``."""
        out: list[Any] = []
        owned: list[bytes] = []
        fetch: list[int] = []
        for i, r in enumerate(refs):
            e = self.entries.get(r._id)
            out.append(e)
            if e is None:
                self._check_borrowed(r._id, r._owner)
                fetch.append(i)
            elif not e.ready:
                owned.append(r._id)
        if not owned and not fetch:
            return out
        fut = asyncio.get_running_loop().create_future()
        w = self.store.wait_for(
            owned,
            len(owned) + len(fetch),
            lambda: _settle(fut, None),
            deadline=deadline,
            on_timeout=lambda: _settle(fut, _timeout_error(timeout)),
        )
        tasks = [
            asyncio.ensure_future(self._fetch_into(out, i, refs[i], w, fut))
            for i in fetch
        ]
        self._arm(deadline)
        try:
            await fut
        finally:
            self.store.cancel(w)
            for t in tasks:
                t.cancel()
        return out

    async def _fetch_into(
        self,
        out: list[Any],
        i: int,
        ref: ObjectRef,
        w: Waiter,
        fut: asyncio.Future[Any],
    ) -> None:
        try:
            out[i] = await self._fetch_from_owner(ref._id, ref._owner)  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001 - handed to the waiting get
            _settle(fut, err)
            return
        self.store.signal(w)

    async def resolve(self, oid: bytes, owner: Address | None) -> ObjEntry:
        """Wait until ``oid`` is ready here (owned) or at its owner (borrowed)."""
        e = self.entries.get(oid)
        if e is None:
            self._check_borrowed(oid, owner)
            return await self._fetch_from_owner(oid, owner)  # type: ignore[arg-type]
        if not e.ready:
            fut = asyncio.get_running_loop().create_future()
            w = self.store.wait_for_entries([e], lambda: _settle(fut, None))
            if w is not None:
                try:
                    await fut
                finally:
                    self.store.cancel(w)
        return e

    def _check_borrowed(self, oid: bytes, owner: Address | None) -> None:
        if owner is None or owner.worker_id == self._links.worker_id:
            raise exc_mod.ObjectLostError(
                oid.hex(),
                "",
                "",
                f"Object {oid.hex()} is lost: its value was freed "
                "(no reference to it remained) or never existed.",
            )

    async def _fetch_from_owner(
        self, oid: bytes, owner: Address, lost_node: bytes = b""
    ) -> ObjEntry:
        try:
            conn = await self._links.connect_to(owner)
            reply, frames = await conn.call(
                "worker.get_object", GetObjectRequest(oid=oid, lost_node=lost_node)
            )
        except RpcError as err:
            where = owner.tcp or owner.unix
            raise lost_error(
                exc_mod.OwnerDiedError,
                oid,
                where,
                f"Object {oid.hex()} is lost because its owner died or is unreachable "
                f"({err}): worker {owner.worker_id.hex()} at {where} on node "
                f"{owner.node_id.hex()}. The process that created an object (by "
                "put() or by submitting the task that returns it) owns it; keep it "
                "alive while others use its objects.",
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
        if self._refs.has(oid):
            self.entries[oid] = e  # cache while we borrow it
        return e

    def materialize(self, ref: ObjectRef, e: ObjEntry) -> Any:
        """The value of a ready entry (user thread); raises stored errors."""
        if e.data is not None:
            value = deserialize(e.data, e.bufs)
        else:
            value = self.stored.read(ref._id, e)
        if e.is_error:
            e.accessed = True
            raise _as_raisable(value)
        return value

    async def get_one_async(self, ref: ObjectRef) -> Any:
        for attempt in range(_MAX_RELOCATIONS + 1):
            e = await self.resolve(ref._id, ref._owner)
            if e.data is not None or e.is_error:
                value = deserialize(e.data, e.bufs)
                break
            try:
                value = await self.stored.read_async(ref._id, e)
                break
            except CopyLostError as lost:
                if attempt == _MAX_RELOCATIONS:
                    raise
                await self.relocate(ref, lost.node_id)
        if e.is_error:
            e.accessed = True
            raise _as_raisable(value)
        return value

    async def h_get_object(self, conn: Connection, req: Any, bufs: Any) -> Any:
        """``worker.get_object``: a borrower asks for the value of an object we own."""
        e = self.entries.get(req.oid)
        if e is None:
            return GetObjectReply(status="FREED")
        if req.lost_node and e.stored() and e.node_id == req.lost_node:
            # A borrower could not read it there: relocate or rebuild it.
            await self.recovery.lost_if_gone(req.oid, req.lost_node)
        if not e.ready:
            await self.resolve(req.oid, None)
        if e.data is None:
            return GetObjectReply(
                status="READY",
                obj=ReturnObject(oid=req.oid, node_id=e.node_id, size=e.size),
            )
        obj = ReturnObject(oid=req.oid, nbufs=1 + len(e.bufs), is_error=e.is_error)
        return GetObjectReply(status="READY", obj=obj), [e.data, *e.bufs]

    # -- wait -------------------------------------------------------------------------
    async def wait(
        self, refs: list[ObjectRef], num_returns: int, timeout: float | None
    ) -> list[bool]:
        deadline = self.store.deadline(timeout)
        done = [False] * len(refs)
        count = 0
        owned: list[tuple[int, ObjEntry]] = []
        borrowed: list[int] = []
        for i, r in enumerate(refs):
            e = self.entries.get(r._id)
            if e is None:
                borrowed.append(i)
            elif e.ready:
                done[i] = True
                e.accessed = True
                count += 1
            else:
                owned.append((i, e))
        if count >= num_returns:
            return done
        fut = asyncio.get_running_loop().create_future()
        w = self.store.wait_for(
            [refs[i]._id for i, _ in owned],
            num_returns - count,
            lambda: _settle(fut, None),
            deadline=deadline,
            on_timeout=lambda: _settle(fut, None),
        )

        async def one(i: int) -> None:
            with contextlib.suppress(Exception):  # an error is a result too
                await self.resolve(refs[i]._id, refs[i]._owner)
            done[i] = True
            self.store.signal(w)

        tasks = [asyncio.ensure_future(one(i)) for i in borrowed]
        self._arm(deadline)
        try:
            await fut
        finally:
            self.store.cancel(w)
            for t in tasks:
                t.cancel()
        for i, e in owned:
            done[i] = e.accessed = e.ready
        return done

    # -- deadlines and release (loop thread) ----------------------------------------------
    def _arm(self, deadline: float | None) -> None:
        """Make sure the store's deadlines are checked at ``deadline``."""
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        delay = self.store.remaining(deadline) or 0.0
        self._timer = self._links.loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._arm(self.store.expire_due())

    def release(self, oid: bytes, owned: bool) -> None:
        """Every reference is gone (loop thread): drop our copy; an owner frees it everywhere."""
        e = self.store.pop(oid)
        if owned:
            self.recovery.released(oid)
        if owned and e is not None and e.is_error and not e.accessed and e.ready:
            unhandled_errors.report(e.data, e.bufs)
        if owned and e is not None and e.node_id and e.data is None:
            self.stored.free(oid, e)


def _settle(fut: asyncio.Future[Any], error: BaseException | None) -> None:
    if not fut.done():
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


def _timeout_error(timeout: float | None) -> exc_mod.GetTimeoutError:
    return exc_mod.GetTimeoutError(
        f"Get timed out: some object(s) were not ready after {timeout} seconds."
    )


def _as_raisable(value: Any) -> BaseException:
    if isinstance(value, exc_mod.TaskError):
        return value.as_instanceof_cause()
    if isinstance(value, BaseException):
        return value
    return exc_mod.EmberSystemError(f"bad error value {value!r}")
