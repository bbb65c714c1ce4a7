"""``worker.drop_cached_objects``: a core worker unpins cached mappings no value uses."""

from __future__ import annotations

from typing import Any

from ember.common.clock import MonotonicClock
from ember.object_store.shm import Arena, create_arena, readonly_view
from ember.object_store.store import PAGE
from ember.protocol.messages import ObjectIdsRequest
from ember.runtime.memory_store import MemoryStore, ObjEntry
from ember.runtime.stored import StoredObjects


class Conn:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[bytes]]] = []

    def is_closed(self) -> bool:
        return False

    def notify(self, method: str, req: Any) -> None:
        self.sent.append((method, list(req.oids)))


class LoopThread:
    def call_lazy(self, fn: Any) -> None:
        pass  # the drop flushes at once; a lazy flush would find nothing left


class Links:
    def __init__(self, arena: Arena) -> None:
        self.arena = arena
        self.node_conn = Conn()
        self.loop_thread = LoopThread()


def test_only_mappings_without_a_live_view_are_dropped_and_unpinned(tmp_path):
    path = str(tmp_path / "arena")
    create_arena(path, 4 * PAGE)
    arena = Arena(path, 4 * PAGE)
    links = Links(arena)
    store = MemoryStore(MonotonicClock(), lambda oid: True)
    stored = StoredObjects(store, links)  # type: ignore[arg-type]
    idle, used, other = b"i" * 20, b"u" * 20, b"o" * 20
    entries = {}
    for n, oid in enumerate((idle, used, other)):
        e = entries[oid] = ObjEntry()
        store.entries[oid] = e
        stored.map(oid, e, n * PAGE, PAGE)
    view = readonly_view(entries[used].mapping)  # the program still holds a value
    stored.h_drop_cached(None, ObjectIdsRequest(oids=[idle, used]), [])
    assert entries[idle].mapping is None
    assert entries[used].mapping is not None
    assert entries[other].mapping is not None  # not asked for
    assert links.node_conn.sent == [("node.release_objects", [idle])]
    del view
    stored.h_drop_cached(None, ObjectIdsRequest(oids=[used]), [])
    assert links.node_conn.sent[-1] == ("node.release_objects", [used])
    for e in entries.values():
        e.mapping = None
    arena.close()
