"""The objects of local mode: an in-process store, its ObjectRefs and generators.

Local-mode refs are ``ObjectRef`` subclasses, so ``isinstance(ref,
ember.ObjectRef)`` holds, and user code sees the same type as on a cluster.
The store counts the live refs of each object and drops a value with its last
ref, as an owner frees an object on a cluster; a ref pickled into a value
(``put([ref])``) is rebuilt as another counted ref, so it keeps the object
alive.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Generator
from typing import Any

from ember import exceptions as exc_mod
from ember.common.ids import new_task_id, object_id_for
from ember.runtime.object_ref import ObjectRef, ObjectRefGenerator
from ember.runtime.serialization import deserialize, note_contained_ref, serialize


class _Stored:
    """A value as a task's return or a ``put`` leaves it: pickled, with the refs in it."""

    __slots__ = ("buffers", "contained", "count", "data", "error")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.error = error
        self.count = 0
        if error is None:
            ser = serialize(value)
            self.data = ser.data
            self.buffers = [bytes(memoryview(b).cast("B")) for b in ser.buffers]
            self.contained = ser.contained  # the refs inside keep their objects alive
        else:
            self.data, self.buffers, self.contained = b"", [], []


class LocalStore:
    """Values and errors by object id, each kept while a ref to it lives.

    Values are stored pickled and unpickled by every ``get``, so that, as on a
    cluster, a caller never shares a mutable object with a task or another
    caller, and arrays come back read-only.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, _Stored] = {}

    def add(self, value: Any = None, error: BaseException | None = None) -> ObjectRef:
        """Store ``value`` (pickled now; raises TypeError if it cannot be) or ``error``."""
        oid = object_id_for(new_task_id(), 1)
        self._entries[oid] = _Stored(value, error)
        return LocalObjectRef(oid, self)

    def incref(self, oid: bytes) -> None:
        with self._lock:
            entry = self._entries.get(oid)
            if entry is not None:
                entry.count += 1

    def decref(self, oid: bytes) -> None:
        dropped = None
        with self._lock:
            entry = self._entries.get(oid)
            if entry is not None:
                entry.count -= 1
                if entry.count <= 0:
                    dropped = self._entries.pop(oid)
        del dropped  # outside the lock: the refs inside it decref in turn

    def value(self, ref: ObjectRef) -> Any:
        """The value of ``ref``; raises its stored error."""
        entry = self._entries.get(ref.binary())
        if entry is None:
            raise exc_mod.ObjectLostError(
                ref.hex(),
                "",
                "",
                _detail=f"Object {ref.hex()} is unknown to this local-mode session (it was made "
                "by another session or on a cluster).",
            )
        if entry.error is not None:
            raise entry.error
        return deserialize(entry.data, entry.buffers)

    def clear(self) -> None:
        with self._lock:
            entries, self._entries = self._entries, {}
        entries.clear()  # outside the lock: contained refs decref as they go

    def __len__(self) -> int:
        return len(self._entries)


#: the store of the local-mode session, for refs rebuilt by unpickling
_active: LocalStore | None = None


def activate(store: LocalStore | None) -> None:
    global _active
    _active = store


def _rebuild(oid: bytes) -> ObjectRef:
    store = _active
    if store is None:
        return ObjectRef(oid, None, _register=False)
    return LocalObjectRef(oid, store)


class LocalObjectRef(ObjectRef):
    """An ObjectRef of local mode; its value is ready when it exists."""

    __slots__ = ("_store",)

    def __init__(self, oid: bytes, store: LocalStore) -> None:
        ObjectRef.__init__(self, oid, None, _register=False)
        self._store = store
        store.incref(oid)

    def __reduce__(self) -> tuple[Any, ...]:
        note_contained_ref(self)
        return (_rebuild, (self._id,))

    def __del__(self) -> None:
        store = getattr(self, "_store", None)
        if store is not None:
            store.decref(self._id)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._ready().__await__()

    async def _ready(self) -> Any:
        return self._store.value(self)

    def future(self) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            fut.set_result(self._store.value(self))
        except BaseException as exc:  # noqa: BLE001  (the stored error is the result)
            fut.set_exception(exc)
        return fut

    def _on_completed(self, callback: Any) -> None:
        callback(self.future().result())


class _LocalStream:
    """The stream of one local-mode streaming task: every item was produced before
    ``.remote()`` returned (the ``StreamHost`` of its ``ObjectRefGenerator``)."""

    def __init__(self, refs: list[ObjectRef]) -> None:
        self._refs = refs

    def next_item(
        self, task_id: bytes, index: int, timeout: float | None
    ) -> ObjectRef | None:
        return self._refs[index] if index < len(self._refs) else None

    async def next_item_async(self, task_id: bytes, index: int) -> ObjectRef | None:
        return self.next_item(task_id, index, None)

    def peek(self, task_id: bytes, index: int) -> tuple[bool, bool]:
        arrived = index < len(self._refs)
        return arrived, not arrived

    def wait_ref(self, task_id: bytes, index: int) -> ObjectRef | None:
        return self.next_item(task_id, index, None)

    def drop(self, task_id: bytes) -> None:
        pass


class LocalRefGenerator(ObjectRefGenerator):
    """The generator of a local-mode streaming task."""

    def __init__(self, refs: list[ObjectRef], completed: ObjectRef) -> None:
        super().__init__(completed, _LocalStream(refs))
