"""Values in the node's shared-memory arena: create, pin, map, unpin, free.

Reading a stored value pins it at the node daemon and maps it read-only; the
entry keeps that mapping so later reads of the same object cost no round
trip, and a finalizer on the mapping unpins it once the entry is dropped and
every view (e.g. a numpy array) is gone.  Unpins are sent lazily, in batches
(``node.release_objects``).  An owner frees a stored object on every node
that holds a copy of it.

When its store needs room the node daemon asks for pins back
(``worker.drop_cached_objects``): each cached mapping no value uses any more
is dropped, which unpins it, so the daemon can spill the object.  A create
that does not fit waits at the daemon while it spills (bounded by the
daemon's ``object_store_full_timeout_s``); its final refusal becomes
``ObjectStoreFullError`` here.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from typing import Any

from ember import exceptions as exc_mod
from ember.object_store.shm import readonly_view
from ember.protocol.messages import (
    Address,
    CreateObjectRequest,
    GetObjectsRequest,
    ObjectIdsRequest,
    PullObjectRequest,
    SealObjectRequest,
)
from ember.rpc.errors import RemoteError, RpcError
from ember.runtime.links import Links
from ember.runtime.memory_store import MemoryStore, ObjEntry
from ember.runtime.serialization import (
    SerializedValue,
    deserialize,
    read_layout,
    write_layout,
)

#: pulls of one object a read tries when its fresh copy is evicted before the pin
PULL_ATTEMPTS = 3


class CopyLostError(exc_mod.ObjectLostError):
    """The copy of an object at ``node_id`` could not be read (that node is gone).

    Raised to the reader's ``get``, which has the owner relocate or rebuild the
    object (``recovery.py``) and reads again; it reaches the user only if that
    keeps failing.
    """

    node_id: bytes = b""


def copy_lost(oid: bytes, node_id: bytes, detail: str) -> CopyLostError:
    err = CopyLostError(object_ref_hex=oid.hex(), owner_address="", call_site="")
    err.message, err.node_id = detail, node_id
    err.args = (str(err),)
    return err


class StoredObjects:
    """Arena I/O of one core worker's stored objects."""

    def __init__(self, store: MemoryStore, links: Links) -> None:
        self._entries = store.entries
        self._links = links
        self._pending_release: list[bytes] = []
        self._release_scheduled = False
        #: this process's live mappings by object id (for ``ref_report``: values
        #: that still use an extent keep its object pinned, even once its ref is gone)
        self.mapped: weakref.WeakValueDictionary[bytes, Any] = (
            weakref.WeakValueDictionary()
        )

    async def create_in_store(
        self,
        oid: bytes,
        size: int,
        ser: SerializedValue,
        pin: bool = False,
        owner: Address | None = None,
    ) -> int:
        """Write ``ser`` into a new extent of the local arena and seal it; its offset.

        ``owner``: whose object it is (None: this process's); the node frees it
        when that owner dies.
        """
        node = self._links.node_conn
        owner = owner or self._links.address
        req = CreateObjectRequest(
            oid=oid, size=size, owner=owner.worker_id, owner_node=owner.node_id
        )
        try:
            reply, _ = await node.call("node.create_object", req)
        except RemoteError as err:
            if err.is_a(MemoryError):
                raise exc_mod.ObjectStoreFullError(err.remote_message) from None
            raise
        if reply.exists:  # a sealed copy is in this node's store already
            return (await self.pin(oid)).offset if pin else -1
        view = self._links.arena.writable(reply.offset, size)
        try:
            # Copy outside the loop thread: it may be gigabytes.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, write_layout, ser, view)
        except Exception:  # (a cancelled write may still be copying: left to close)
            view.release()
            if not node.is_closed():
                node.notify("node.abort_object", SealObjectRequest(oid=oid))
            raise
        view.release()
        await node.call("node.seal_object", SealObjectRequest(oid=oid, pin=pin))
        return reply.offset

    def read(self, oid: bytes, e: ObjEntry) -> Any:
        """User thread: the value of a stored entry (pins and maps it the first time)."""
        m = e.mapping
        if m is None:
            loc = self._links.run(self.pin_here(oid, e))
            m = self.map(oid, e, loc.offset, loc.size)
        data, bufs = read_layout(readonly_view(m))
        return deserialize(data, bufs)

    async def read_async(self, oid: bytes, e: ObjEntry) -> Any:
        """Loop thread: like :meth:`read`."""
        m = e.mapping
        if m is None:
            loc = await self.pin_here(oid, e)
            m = self.map(oid, e, loc.offset, loc.size)
        data, bufs = read_layout(readonly_view(m))
        return deserialize(data, bufs)

    async def pin_here(self, oid: bytes, e: ObjEntry) -> Any:
        """Pin a stored object on this node, pulling a copy from its node first if needed."""
        if e.node_id == self._links.node_id:
            try:
                return await self.pin(oid)
            except exc_mod.ObjectLostError as err:
                if e.owner is None or e.owner.worker_id == self._links.worker_id:
                    raise
                # A borrowed object gone from this node (freed for its dead owner,
                # or lost): its owner says where it is now, or that it died.
                raise copy_lost(oid, e.node_id, str(err)) from None
        try:
            return await self.pin(oid)
        except exc_mod.ObjectLostError:
            pass  # no local copy yet
        for attempt in range(PULL_ATTEMPTS):
            await self._pull(oid, e)
            try:
                return await self.pin(oid)
            except exc_mod.ObjectLostError:
                # a full store took the copy back before we pinned it: pull again
                if attempt == PULL_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _pull(self, oid: bytes, e: ObjEntry) -> None:
        links = self._links
        try:
            await links.node_conn.call(
                "node.pull_object", PullObjectRequest(oid=oid, node_id=e.node_id)
            )
        except (RpcError, OSError) as err:
            if isinstance(err, RemoteError) and err.is_a(MemoryError):
                # no room for the copy here, even after spilling
                raise exc_mod.ObjectStoreFullError(err.remote_message) from None
            raise copy_lost(
                oid,
                e.node_id,
                f"Object {oid.hex()} could not be fetched from node {e.node_id.hex()}, "
                f"which held its only known copy: {err}",
            ) from err
        self._record_copy(oid, e)

    def _record_copy(self, oid: bytes, e: ObjEntry) -> None:
        links = self._links
        if e.owner is None or e.owner.worker_id == links.worker_id:
            self.add_copy(oid, links.node_id)
        else:
            links.sup.spawn(
                self._tell_owner(e.owner, oid, links.node_id), name="add-location"
            )

    async def _tell_owner(self, owner: Address, oid: bytes, node_id: bytes) -> None:
        try:
            conn = await self._links.connect_to(owner)
            conn.notify(
                "worker.add_location", PullObjectRequest(oid=oid, node_id=node_id)
            )
        except RpcError:
            pass

    def add_copy(self, oid: bytes, node_id: bytes) -> None:
        e = self._entries.get(oid)
        if e is None:
            return
        if e.copies is None:
            e.copies = []
        if node_id not in e.copies and node_id != e.node_id:
            e.copies.append(node_id)

    def h_add_location(self, conn: Any, req: Any, bufs: Any) -> None:
        """``worker.add_location``: a borrower pulled a copy of our object to its node."""
        self.add_copy(req.oid, req.node_id)

    async def pin(self, oid: bytes) -> Any:
        try:
            reply, _ = await self._links.node_conn.call(
                "node.get_objects", GetObjectsRequest(oids=[oid])
            )
        except RemoteError as err:
            if err.is_a(MemoryError):  # a spilled object found no room to come back
                raise exc_mod.ObjectStoreFullError(err.remote_message) from None
            raise
        loc = reply.found[0]
        if loc is None:
            raise exc_mod.ObjectLostError(
                oid.hex(),
                "",
                "",
                _detail=f"Object {oid.hex()} is no longer in the object store.",
            )
        return loc

    def map(self, oid: bytes, e: ObjEntry, offset: int, size: int) -> Any:
        """Map a pinned extent; the entry keeps the mapping while it is cached here."""
        m = self._links.arena.extent(offset, size)
        weakref.finalize(m, self._unpin_later, oid)
        self.mapped[oid] = m
        if self._entries.get(oid) is e:
            e.mapping = m  # a racing reader's extent is simply dropped (own pin)
        return m

    def h_drop_cached(self, conn: Any, req: Any, bufs: Any) -> None:
        """``worker.drop_cached_objects``: unpin those of ``req.oids`` no value uses."""
        dropped = False
        for oid in req.oids:
            e = self._entries.get(oid)
            if e is None or e.mapping is None:
                continue
            # the entry's reference and getrefcount's argument: no view is alive
            if sys.getrefcount(e.mapping) <= 2:
                e.mapping = None  # its finalizer queues the unpin
                dropped = True
        if dropped:
            self._flush_unpins()

    def _unpin_later(self, oid: bytes) -> None:
        self._pending_release.append(oid)
        if not self._release_scheduled:
            self._release_scheduled = True
            self._links.loop_thread.call_lazy(self._flush_unpins)

    def _flush_unpins(self) -> None:
        self._release_scheduled = False
        oids, self._pending_release = self._pending_release, []
        node = self._links.node_conn
        if oids and not node.is_closed():
            node.notify("node.release_objects", ObjectIdsRequest(oids=oids))

    def free(self, oid: bytes, e: ObjEntry) -> None:
        """An owned stored object died: free it on its node and every copy's node."""
        self.free_at([oid], e.node_id)
        for node_id in e.copies or ():
            self.free_at([oid], node_id)

    def free_at(self, oids: list[bytes], node_id: bytes) -> None:
        links = self._links
        if node_id == links.node_id:
            if not links.node_conn.is_closed():
                links.node_conn.notify("node.free_objects", ObjectIdsRequest(oids=oids))
            return
        if node_id in links.dead_nodes:
            return  # its copy died with it
        links.sup.spawn(self._free_remote(oids, node_id), name="free-remote")

    async def _free_remote(self, oids: list[bytes], node_id: bytes) -> None:
        links = self._links
        try:
            conn = await links.connect_node(node_id, await links.node_address(node_id))
            conn.notify("node.free_objects", ObjectIdsRequest(oids=oids))
        except RpcError:
            pass  # that node is gone, and its copy with it
