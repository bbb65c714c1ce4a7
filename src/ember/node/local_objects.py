"""The node's object store as its clients use it: create, seal, pin, release, free.

Pins are counted per connection (``conn.state["pins"]``), so a client that
goes away (or whose worker exits) releases every pin it held exactly once.
A create that does not fit waits while the :class:`~ember.node.spill.Spiller`
makes room, and a pin of a spilled object restores it first; both take the
slow path only then (the handler returns a coroutine), so the common case
stays a plain synchronous handler.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ember.node.object_owners import ObjectOwners
from ember.node.spill import Spiller
from ember.object_store.store import ObjectStore, StoreFullError
from ember.protocol.messages import (
    CreateObjectReply,
    Empty,
    GetObjectsReply,
    GetObjectsRequest,
    ObjectIdsRequest,
    ObjectLocation,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError

#: how long a create waits for another writer of the same object to finish
CONTENDED_WAIT_S = 120.0
CONTENDED_POLL_S = 0.01


class LocalObjects:
    """``node.*`` object handlers over one ``ObjectStore``."""

    def __init__(self, store: ObjectStore, spiller: Spiller) -> None:
        self._store = store
        self._spill = spiller
        #: connections holding pins (asked to drop idle cached mappings)
        self._pinners: set[Connection] = set()
        spiller.ask_release = self.ask_release
        self.owners = ObjectOwners()
        #: created for an owner that is already dead: deleted once sealed
        self._doomed: set[bytes] = set()

    def handlers(self) -> dict[str, Any]:
        return {
            "node.create_object": self.h_create,
            "node.seal_object": self.h_seal,
            "node.abort_object": self.h_abort,
            "node.get_objects": self.h_get,
            "node.release_objects": self.h_release,
            "node.free_objects": self.h_free,
            "node.owners_died": self.h_owners_died,
        }

    def h_create(self, conn: Connection, req: Any, bufs: Any) -> Any:
        if req.oid in self._store.entries:
            return self._create_contended(conn, req)
        try:
            off = self._store.create(req.oid, req.size)
        except StoreFullError:
            return self._create_slow(conn, req)
        return self._created(conn, req, off)

    def _created(self, conn: Connection, req: Any, off: int) -> CreateObjectReply:
        self.owned_by(req.oid, req.owner, req.owner_node)
        if off < 0:
            if req.oid in self._doomed:  # the copy here is for an owner already dead
                self._doomed.discard(req.oid)
                self._store.delete(req.oid)
            return CreateObjectReply(offset=-1, exists=True)
        writing: set[bytes] | None = conn.state.get("writing")
        if writing is None:
            writing = conn.state["writing"] = set()
            conn.on_close(self.abort_unsealed)
        writing.add(req.oid)
        return CreateObjectReply(offset=off)

    async def _create_slow(self, conn: Connection, req: Any) -> CreateObjectReply:
        try:
            off = await self._spill.create(req.oid, req.size)
        except KeyError:  # another copy of it was begun while we made room
            return await self._create_contended(conn, req)
        return self._created(conn, req, off)

    async def _create_contended(self, conn: Connection, req: Any) -> CreateObjectReply:
        """Create ``req.oid`` where an entry for it exists already.

        A task run again by lineage (or a retried one whose first worker died)
        writes the same bytes again, so a sealed copy, even one already deleted
        but still mapped by a reader, answers ``exists`` (the writer skips its
        write, as with Ray's plasma). A copy still being written (a pull, a
        restore, another run) is waited for; one whose writer gave up is replaced.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONTENDED_WAIT_S
        while True:
            if self._store.revive(req.oid):
                return self._created(conn, req, -1)
            if req.oid not in self._store.entries:
                try:
                    off = await self._spill.create(req.oid, req.size)
                except KeyError:
                    continue
                return self._created(conn, req, off)
            if loop.time() >= deadline:
                raise RpcError(
                    f"object {req.oid.hex()} is still being written here by another"
                    f" writer after {CONTENDED_WAIT_S:.0f} s"
                )
            await asyncio.sleep(CONTENDED_POLL_S)

    def abort_unsealed(self, conn: Connection) -> None:
        """A writer went away: drop what it created but never sealed."""
        writing: set[bytes] = conn.state.get("writing") or set()
        for oid in writing:
            e = self._store.entries.get(oid)
            if e is not None and not e.sealed:
                self.owners.forget(oid)
                self._store.delete(oid)
        writing.clear()
        self._spill.changed()

    def owned_by(self, oid: bytes, owner: bytes, owner_node: bytes) -> None:
        """Record the owner of a new object (or copy) here."""
        if not self.owners.record(oid, owner, owner_node):
            self._doomed.add(oid)

    def h_seal(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        self._store.seal(req.oid)
        writing = conn.state.get("writing")
        if writing:
            writing.discard(req.oid)
        if self._doomed and req.oid in self._doomed:
            self._doomed.discard(req.oid)
            self._store.delete(req.oid)  # its owner died while it was written
            self._spill.changed()
            return Empty()
        if req.pin:
            self.h_get(conn, GetObjectsRequest(oids=[req.oid]), bufs)
        self._spill.maybe_relieve()
        return Empty()

    def h_abort(self, conn: Connection, req: Any, bufs: Any) -> None:
        writing = conn.state.get("writing")
        if writing:
            writing.discard(req.oid)
        self._store.delete(req.oid)
        self._spill.changed()

    def h_get(self, conn: Connection, req: Any, bufs: Any) -> Any:
        pins: Counter[bytes] = conn.state.setdefault("pins", Counter())
        if not conn.state.get("pin_cb"):
            conn.state["pin_cb"] = True
            conn.on_close(self.unpin_all)
        self._pinners.add(conn)
        found: list[ObjectLocation | None] = []
        spilled = False
        for oid in req.oids:
            e = self._store.pin(oid)
            if e is None:
                found.append(None)
                spilled = spilled or self._spill.is_spilled(oid)
            else:
                pins[oid] += 1
                found.append(ObjectLocation(offset=e.offset, size=e.size))
        if spilled:
            return self._get_restored(conn, req.oids, found)
        return GetObjectsReply(found=found)

    async def _get_restored(
        self, conn: Connection, oids: list[bytes], found: list[ObjectLocation | None]
    ) -> GetObjectsReply:
        """Restore the spilled ones among ``oids`` (all at once), then pin them."""
        mine: list[bytes] = []
        for _ in range(8):  # a restored object may be evicted again before we pin it
            todo = [i for i, loc in enumerate(found) if loc is None]
            wanted = {oids[i] for i in todo if self._spill.is_spilled(oids[i])}
            if not wanted:
                break
            await asyncio.gather(*(self._spill.restore(oid) for oid in wanted))
            for i in todo:
                e = self._store.pin(oids[i])
                if e is not None:
                    mine.append(oids[i])
                    found[i] = ObjectLocation(offset=e.offset, size=e.size)
        if conn.is_closed():  # its pins were dropped already: these are nobody's
            for oid in mine:
                self._store.unpin(oid)
        else:
            conn.state["pins"].update(mine)
            # (ask_release may have dropped it while it held no pin yet)
            self._pinners.add(conn)
        return GetObjectsReply(found=found)

    def ask_release(self) -> None:
        """Ask each client that pins objects to drop the mappings it keeps unused."""
        for conn in list(self._pinners):
            pins = conn.state.get("pins")
            if conn.is_closed() or not pins:
                self._pinners.discard(conn)
                continue
            try:
                conn.notify(
                    "worker.drop_cached_objects", ObjectIdsRequest(oids=list(pins))
                )
            except RpcError:
                self._pinners.discard(conn)

    def h_release(self, conn: Connection, req: Any, bufs: Any) -> None:
        pins: Counter[bytes] = conn.state.get("pins", Counter())
        for oid in req.oids:
            if pins.get(oid, 0) > 0:
                pins[oid] -= 1
                if pins[oid] == 0:
                    del pins[oid]
                self._store.unpin(oid)
        self._spill.changed()
        self._spill.maybe_relieve()

    def unpin_all(self, conn: Connection) -> None:
        """Release every pin ``conn`` holds (it clears them: a second call does nothing)."""
        for oid, n in conn.state.get("pins", {}).items():
            for _ in range(n):
                self._store.unpin(oid)
        conn.state["pins"] = Counter()
        self._pinners.discard(conn)
        self._spill.changed()

    def h_free(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.free(req.oids)

    def free(self, oids: list[bytes]) -> None:
        for oid in oids:
            self.owners.forget(oid)
            self._store.delete(oid)
            self._spill.free(oid)
        self._spill.changed()

    def h_owners_died(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.owners_died(req.worker_ids, req.node_ids)

    def owners_died(
        self, worker_ids: Iterable[bytes], node_ids: Iterable[bytes] = ()
    ) -> int:
        """Free every object (in memory and spilled) whose owner died; how many."""
        oids = self.owners.owners_died(worker_ids, node_ids)
        if oids:
            self.free(oids)
            self._ask_drop(set(oids))
        return len(oids)

    def _ask_drop(self, oids: set[bytes]) -> None:
        """Ask the readers that still map some of ``oids`` to let them go."""
        for conn in list(self._pinners):
            held = [oid for oid in conn.state.get("pins", ()) if oid in oids]
            if held and not conn.is_closed():
                try:
                    conn.notify(
                        "worker.drop_cached_objects", ObjectIdsRequest(oids=held)
                    )
                except RpcError:
                    pass
