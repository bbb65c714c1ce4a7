"""Moving objects between nodes: pull in chunks, straight into the local arena.

Data flow::

    core worker --node.pull_object(oid, source)--> local daemon (ObjectManager.pull)
        | one transfer per object however many readers wait (shared future)
        | source daemon: node.pin_for_transfer -> size (the copy stays pinned)
        v
    up to CHUNKS_IN_FLIGHT x node.read_chunk(oid, offset, n) --> bytes into arena
        | (each chunk is written into the local extent as it arrives, so no
        |  Python object ever holds the whole value)
        v
    seal locally; node.release_transfer at the source; reply to the readers

A failed transfer deletes the partial local copy and fails every waiter.
The local copy is created through the spiller (``Spiller.create``), so a
full store makes room first, and is marked secondary (dropped first when
room is needed again).  A source whose copy is spilled serves the chunks
straight from its spill file, without restoring it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ember.common.aio import Supervisor
from ember.node.cluster_view import ClusterView
from ember.node.object_owners import ObjectOwners
from ember.node.spill import Spiller
from ember.object_store.shm import Arena
from ember.object_store.store import ObjectStore
from ember.protocol.messages import (
    Empty,
    ReadChunkRequest,
    SealObjectRequest,
    TransferPinReply,
)
from ember.rpc.connection import Connection, ConnectionPool
from ember.rpc.errors import RpcError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024
CHUNKS_IN_FLIGHT = 4


class ObjectManager:
    """Pulls objects from other nodes and serves chunks of local ones."""

    def __init__(
        self,
        store: ObjectStore,
        arena: Arena,
        cluster: ClusterView,
        peers: ConnectionPool,
        sup: Supervisor,
        spiller: Spiller,
        owners: ObjectOwners,
    ) -> None:
        self._store = store
        self._owners = owners
        self._spill = spiller
        self._arena = arena
        self._cluster = cluster
        #: connections to other nodes' daemons, by node id
        self.peers = peers
        self._sup = sup
        self.pulls: dict[bytes, asyncio.Future[None]] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "node.pull_object": self.h_pull_object,
            "node.pin_for_transfer": self.h_pin_for_transfer,
            "node.read_chunk": self.h_read_chunk,
            "node.release_transfer": self.h_release_transfer,
        }

    async def peer(self, node_id: bytes) -> Connection:
        """A cached connection to another node's daemon."""
        conn = self.peers.cached(node_id)
        if conn is not None:
            return conn
        info = self._cluster.get(node_id)
        if info is None:
            await self._cluster.refresh()
            info = self._cluster.get(node_id)
        if info is None or not info.alive:
            raise RpcError(f"node {node_id.hex()[:8]} is not alive")
        return await self.peers.get(node_id, info.address)

    # -- receiving side ---------------------------------------------------------------
    async def h_pull_object(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        if self._store.contains(req.oid) or self._spill.is_spilled(req.oid):
            return Empty()  # a local pin restores a spilled copy
        fut = self.pulls.get(req.oid)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self.pulls[req.oid] = fut
            self._sup.spawn(self._pull(req.oid, req.node_id, fut), name="pull")
        await asyncio.shield(fut)
        return Empty()

    async def _pull(self, oid: bytes, source: bytes, fut: asyncio.Future[None]) -> None:
        created = False
        src: Connection | None = None
        try:
            src = await self.peer(source)
            pin, _ = await src.call("node.pin_for_transfer", SealObjectRequest(oid=oid))
            if not pin.found:
                raise RpcError(f"object {oid.hex()} is not on node {source.hex()[:8]}")
            try:
                offset = await self._spill.create(oid, pin.size, secondary=True)
            except KeyError:
                # a copy of it was made here meanwhile (a restore, a re-run)
                fut.set_result(None)
                return
            self._store.hold(oid)  # a free during the copy must not reuse the extent
            created = True
            await self._copy_chunks(src, oid, offset, pin.size)
            self._store.seal(oid)
            if not self._owners.record(oid, pin.owner, pin.owner_node):
                raise RpcError(f"the owner of object {oid.hex()} died")
            self._store.entries[oid].fresh = True  # until its reader pins it
            self._store.unpin(oid)
            self._spill.maybe_relieve()
            fut.set_result(None)
        except BaseException as exc:
            if created:
                self._store.delete(oid)
                self._store.unpin(oid)
            fut.set_exception(exc)
            fut.exception()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            del self.pulls[oid]
            if src is not None and not src.is_closed():
                src.notify("node.release_transfer", SealObjectRequest(oid=oid))

    async def _copy_chunks(
        self, src: Connection, oid: bytes, offset: int, size: int
    ) -> None:
        arena = self._arena
        starts = list(range(0, size, CHUNK_BYTES))
        sem = asyncio.Semaphore(CHUNKS_IN_FLIGHT)

        async def one(start: int) -> None:
            n = min(CHUNK_BYTES, size - start)
            async with sem:
                _, frames = await src.call(
                    "node.read_chunk", ReadChunkRequest(oid=oid, offset=start, length=n)
                )
            arena.view[offset + start : offset + start + n] = frames[0]

        await asyncio.gather(*(one(s) for s in starts))

    # -- sending side -----------------------------------------------------------------
    def h_pin_for_transfer(
        self, conn: Connection, req: Any, bufs: Any
    ) -> TransferPinReply:
        if not conn.state.get("transfer_cb"):
            conn.state["transfer_cb"] = True
            conn.on_close(self._peer_gone)
        e = self._store.pin(req.oid)
        if e is None:
            size = self._spill.spilled_size(req.oid)
            if size is None or not self._spill.is_spilled(req.oid):
                return TransferPinReply(size=0, found=False)
            # served from its spill file: nothing to pin in memory
            conn.state.setdefault("transfer_files", []).append(req.oid)
            return self._pinned(req.oid, size)
        conn.state.setdefault("transfer_pins", []).append(req.oid)
        return self._pinned(req.oid, e.size)

    def _pinned(self, oid: bytes, size: int) -> TransferPinReply:
        owner = self._owners.owner(oid)
        return TransferPinReply(
            size=size, found=True, owner=owner, owner_node=self._owners.node_of(owner)
        )

    def h_read_chunk(self, conn: Connection, req: Any, bufs: Any) -> Any:
        if req.oid in conn.state.get("transfer_files", ()):
            return self._file_chunk(req.oid, req.offset, req.length)
        e = self._store.entries.get(req.oid)
        if e is None or req.offset + req.length > e.size:
            raise ValueError(f"no such chunk of object {req.oid.hex()}")
        start = e.offset + req.offset
        return Empty(), [self._arena.view[start : start + req.length]]

    async def _file_chunk(self, oid: bytes, offset: int, length: int) -> Any:
        return Empty(), [await self._spill.read_chunk(oid, offset, length)]

    def h_release_transfer(self, conn: Connection, req: Any, bufs: Any) -> None:
        files = conn.state.get("transfer_files", [])
        if req.oid in files:
            files.remove(req.oid)
            return
        pins = conn.state.get("transfer_pins", [])
        if req.oid in pins:
            pins.remove(req.oid)
            self._store.unpin(req.oid)

    def _peer_gone(self, conn: Connection) -> None:
        for oid in conn.state.get("transfer_pins", []):
            self._store.unpin(oid)
        conn.state["transfer_pins"] = []
