"""Streaming generators, caller side: the refs a streaming task has produced so far.

The executing worker sends ``worker.generator_item`` per yielded value (its
value inline or stored, or a negative index for the error the generator
raised); the reply to the push itself ends the stream.  ``ObjectRefGenerator``
reads the items in order, waiting on the loop for those not produced yet.

A ``num_returns="dynamic"`` task streams the same way, but its caller gets one
ref: :meth:`Generators.collect` names it, and when the stream ends its value
becomes a ``DynamicObjectRefGenerator`` of the items' refs (or the task's error).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ember.common.ids import object_id_for
from ember.rpc.connection import Connection
from ember.runtime.dynamic_generator import DynamicObjectRefGenerator
from ember.runtime.links import Links
from ember.runtime.object_ref import ObjectRef
from ember.runtime.objects import Objects
from ember.runtime.serialization import serialize


class GenState:
    """Refs a streaming task has produced so far."""

    def __init__(self) -> None:
        self.refs: list[ObjectRef] = []
        self.done = False
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)


class Generators:
    """The streams of the streaming tasks this process submitted."""

    def __init__(self, objects: Objects, links: Links) -> None:
        self._objects = objects
        self._links = links
        self.streams: dict[bytes, GenState] = {}
        #: dynamic-returns tasks: task id -> the id of the ref their caller holds
        self._collect: dict[bytes, bytes] = {}

    def collect(self, task_id: bytes, oid: bytes) -> None:
        """Any thread, before the task is submitted: when its stream ends, store
        a ``DynamicObjectRefGenerator`` of its items as our pending object ``oid``."""
        self._collect[task_id] = oid

    def h_generator_item(self, conn: Connection, req: Any, frames: list[Any]) -> None:
        """``worker.generator_item``: one more item of a stream (loop thread)."""
        st = self.streams.setdefault(req.task_id, GenState())
        address = self._links.address
        if req.index < 0:  # the generator raised: an error item, then the end
            oid = object_id_for(req.task_id, len(st.refs) + 1)
            ref = ObjectRef(oid, address)
            self._objects.set_inline(oid, frames[0], [], is_error=True)
            st.refs.append(ref)
            st.wake()
            return
        ref = ObjectRef(req.obj.oid, address)
        self._objects.set_return(req.obj, frames, 0)
        st.refs.append(ref)
        st.wake()

    def finished(self, task_id: bytes) -> None:
        """The task's reply arrived: no more items."""
        st = self.streams.setdefault(task_id, GenState())
        st.done = True
        st.wake()
        oid = self._collect.pop(task_id, b"")
        if oid:
            self._objects.set_value(oid, serialize(DynamicObjectRefGenerator(st.refs)))
            del self.streams[task_id]

    def failed(self, task_id: bytes, error: BaseException) -> None:
        """The task failed as a whole: one last item holds ``error``."""
        st = self.streams.setdefault(task_id, GenState())
        oid = object_id_for(task_id, len(st.refs) + 1)
        ref = ObjectRef(oid, self._links.address)
        self._objects.set_error(oid, error)
        st.refs.append(ref)
        st.done = True
        st.wake()
        oid = self._collect.pop(task_id, b"")
        if oid:
            self._objects.set_error(oid, error)
            del self.streams[task_id]

    async def next_item_async(self, task_id: bytes, index: int) -> ObjectRef | None:
        st = self.streams.setdefault(task_id, GenState())
        while len(st.refs) <= index and not st.done:
            w = asyncio.get_running_loop().create_future()
            st.waiters.append(w)
            await w
        return st.refs[index] if index < len(st.refs) else None

    def next_item(
        self, task_id: bytes, index: int, timeout: float | None
    ) -> ObjectRef | None:
        st = self.streams.get(task_id)
        if st is not None and index < len(st.refs):
            return st.refs[index]
        return self._links.run(self.next_item_async(task_id, index), timeout)

    def completed_ref(self, task_id: bytes) -> ObjectRef:
        return ObjectRef(object_id_for(task_id, 0), self._links.address)

    def drop(self, task_id: bytes) -> None:
        """Any thread: the generator object is gone; forget a finished stream."""
        self._links.loop_thread.call(self._drop, task_id)

    def _drop(self, task_id: bytes) -> None:
        st = self.streams.get(task_id)
        if st is not None and st.done:
            del self.streams[task_id]
