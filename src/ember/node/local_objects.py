"""The node's object store as its clients use it: create, seal, pin, release, free.

Pins are counted per connection (``conn.state["pins"]``), so a client that
goes away (or whose worker exits) releases every pin it held exactly once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ember.object_store.store import ObjectStore, StoreFullError
from ember.protocol.messages import (
    CreateObjectReply,
    Empty,
    GetObjectsReply,
    GetObjectsRequest,
    ObjectLocation,
)
from ember.rpc.connection import Connection


class LocalObjects:
    """``node.*`` object handlers over one ``ObjectStore``."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def handlers(self) -> dict[str, Any]:
        return {
            "node.create_object": self.h_create,
            "node.seal_object": self.h_seal,
            "node.abort_object": self.h_abort,
            "node.get_objects": self.h_get,
            "node.release_objects": self.h_release,
            "node.free_objects": self.h_free,
        }

    def h_create(self, conn: Connection, req: Any, bufs: Any) -> CreateObjectReply:
        try:
            off = self._store.create(req.oid, req.size)
        except StoreFullError as exc:
            raise MemoryError(
                f"The object store is full: cannot fit an object of {exc.size} bytes "
                f"({exc.used} of {exc.capacity} bytes in use). Free references to objects you "
                "no longer need, or start with a larger object_store_memory."
            ) from exc
        return CreateObjectReply(offset=off)

    def h_seal(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        self._store.seal(req.oid)
        if req.pin:
            self.h_get(conn, GetObjectsRequest(oids=[req.oid]), bufs)
        return Empty()

    def h_abort(self, conn: Connection, req: Any, bufs: Any) -> None:
        self._store.delete(req.oid)

    def h_get(self, conn: Connection, req: Any, bufs: Any) -> GetObjectsReply:
        pins: Counter[bytes] = conn.state.setdefault("pins", Counter())
        if not conn.state.get("pin_cb"):
            conn.state["pin_cb"] = True
            conn.on_close(self.unpin_all)
        found: list[ObjectLocation | None] = []
        for oid in req.oids:
            e = self._store.pin(oid)
            if e is None:
                found.append(None)
            else:
                pins[oid] += 1
                found.append(ObjectLocation(offset=e.offset, size=e.size))
        return GetObjectsReply(found=found)

    def h_release(self, conn: Connection, req: Any, bufs: Any) -> None:
        pins: Counter[bytes] = conn.state.get("pins", Counter())
        for oid in req.oids:
            if pins.get(oid, 0) > 0:
                pins[oid] -= 1
                if pins[oid] == 0:
                    del pins[oid]
                self._store.unpin(oid)

    def unpin_all(self, conn: Connection) -> None:
        """Release every pin ``conn`` holds (it clears them: a second call does nothing)."""
        for oid, n in conn.state.get("pins", {}).items():
            for _ in range(n):
                self._store.unpin(oid)
        conn.state["pins"] = Counter()

    def h_free(self, conn: Connection, req: Any, bufs: Any) -> None:
        for oid in req.oids:
            self._store.delete(oid)
