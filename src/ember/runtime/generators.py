"""Streaming generators, caller side: the refs a streaming task has produced so far.

The executing worker sends ``worker.generator_item`` per yielded value (its
value inline or stored, or a negative index for the error the generator
raised); the reply to the push itself ends the stream.  ``ObjectRefGenerator``
reads the items in order, waiting on the loop for those not produced yet.

Ids: item ``i`` (0-based) of task ``t`` is ``object_id_for(t, i + 1)`` (an
error the generator raised takes the next index too); the *completed* ref
``object_id_for(t, 0)`` is pending until the task ends, then holds ``None``,
or the error when the task failed as a whole (a crash, a failed argument):
that ref is then also the stream's last item, as in Ray.

Waiting (``ember.wait`` on a generator) needs a ref that is ready once
``next(gen)`` would not block: the next item's ref if it has arrived, else a
*probe*, a pending entry under the next item's id that the item fills when it
comes, and that :meth:`Generators.finished` fills with ``None`` if the stream
ends first.

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
from ember.runtime.serialization import dumps_plain, serialize

_NONE = dumps_plain(None)


class GenState:
    """Refs a streaming task has produced so far."""

    def __init__(self) -> None:
        self.refs: list[ObjectRef] = []
        self.done = False
        #: the caller dropped its generator: keep no more items
        self.dropped = False
        #: the id of the last probe made for a wait (see the module docstring)
        self.probe = b""
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)


class Generators:
    """The streams of the streaming tasks this process submitted.

    ``ObjectRefGenerator`` calls :meth:`next_item`, :meth:`next_item_async`,
    :meth:`peek`, :meth:`wait_ref` and :meth:`drop` from any thread (and any
    event loop); everything else runs on the loop thread.
    """

    def __init__(self, objects: Objects, links: Links) -> None:
        self._objects = objects
        self._links = links
        self.streams: dict[bytes, GenState] = {}
        #: dynamic-returns tasks: task id -> the id of the ref their caller holds
        self._collect: dict[bytes, bytes] = {}

    # -- submission (user thread, before the task is submitted) ---------------------------
    def start(self, task_id: bytes) -> ObjectRef:
        """A streaming task is about to be submitted: its stream and completed ref."""
        self.streams[task_id] = GenState()
        oid = object_id_for(task_id, 0)
        self._objects.add_pending(oid)
        return ObjectRef(oid, self._links.address)

    def collect(self, task_id: bytes, oid: bytes) -> None:
        """Any thread, before the task is submitted: when its stream ends, store
        a ``DynamicObjectRefGenerator`` of its items as our pending object ``oid``."""
        self._collect[task_id] = oid

    # -- the stream (loop thread) ---------------------------------------------------------
    def h_generator_item(self, conn: Connection, req: Any, frames: list[Any]) -> None:
        """``worker.generator_item``: one more item of a stream (loop thread)."""
        st = self.streams.setdefault(req.task_id, GenState())
        if st.done:
            return
        if st.dropped:  # nobody reads it: a stored value is freed at once
            if req.index >= 0:
                self._objects.set_return(req.obj, frames, 0)
            return
        address = self._links.address
        if req.index < 0:  # the generator raised: an error item, then the end
            oid = object_id_for(req.task_id, len(st.refs) + 1)
            ref = ObjectRef(oid, address)
            self._objects.set_inline(oid, frames[0], [], is_error=True)
        else:
            ref = ObjectRef(req.obj.oid, address)
            self._objects.set_return(req.obj, frames, 0)
        st.refs.append(ref)
        st.wake()

    def finished(self, task_id: bytes) -> None:
        """The task's reply arrived (its returns are stored): no more items.

        A reply that failed the call outside its generator carried the error as
        the completed ref: that ref is then the stream's last item (a dynamic
        call's one ref holds the error)."""
        st = self.streams.setdefault(task_id, GenState())
        done_oid = object_id_for(task_id, 0)
        e = self._objects.entries.get(done_oid)
        failed = e is not None and e.ready and e.is_error
        oid = self._collect.pop(task_id, b"")
        if oid:
            if not failed:
                self._objects.set_value(
                    oid, serialize(DynamicObjectRefGenerator(st.refs))
                )
            del self.streams[task_id]
            return
        if not failed:
            self._objects.set_inline(done_oid, _NONE, [])
        elif not st.dropped:
            st.refs.append(ObjectRef(done_oid, self._links.address))
        self._end(task_id, st)

    def failed(self, task_id: bytes, error: BaseException) -> None:
        """The task failed as a whole: its completed ref holds ``error`` and is
        the stream's last item."""
        st = self.streams.setdefault(task_id, GenState())
        oid = self._collect.pop(task_id, b"")
        if oid:
            self._objects.set_error(oid, error)
            del self.streams[task_id]
            return
        oid = object_id_for(task_id, 0)
        if not st.dropped and oid in self._objects.entries:
            st.refs.append(ObjectRef(oid, self._links.address))
            self._objects.set_error(oid, error)
        self._end(task_id, st)

    def _end(self, task_id: bytes, st: GenState) -> None:
        st.done = True
        # a probe under the id of an item that never came: make its wait end
        e = self._objects.entries.get(st.probe) if st.probe else None
        if e is not None and not e.ready:
            self._objects.set_inline(st.probe, _NONE, [])
        st.wake()
        if st.dropped:
            del self.streams[task_id]

    async def _next_on_loop(self, task_id: bytes, index: int) -> ObjectRef | None:
        st = self.streams.setdefault(task_id, GenState())
        while len(st.refs) <= index and not st.done:
            w = asyncio.get_running_loop().create_future()
            st.waiters.append(w)
            await w
        return st.refs[index] if index < len(st.refs) else None

    async def _probe(self, task_id: bytes, index: int) -> ObjectRef | None:
        st = self.streams.setdefault(task_id, GenState())
        if index < len(st.refs):
            return st.refs[index]
        if st.done:
            return None
        oid = object_id_for(task_id, index + 1)
        ref = ObjectRef(oid, self._links.address)  # counted while the wait holds it
        if oid not in self._objects.entries:
            self._objects.add_pending(oid)
        st.probe = oid
        return ref

    # -- what an ObjectRefGenerator asks (any thread) -------------------------------------
    def next_item(
        self, task_id: bytes, index: int, timeout: float | None
    ) -> ObjectRef | None:
        """Item ``index``, waiting for it; None once the stream has ended before it."""
        st = self.streams.get(task_id)
        if st is not None and index < len(st.refs):
            return st.refs[index]
        return self._links.run(self._next_on_loop(task_id, index), timeout)

    async def next_item_async(self, task_id: bytes, index: int) -> ObjectRef | None:
        """As :meth:`next_item`, awaited on any event loop (ember's or the user's)."""
        st = self.streams.get(task_id)
        if st is not None and index < len(st.refs):
            return st.refs[index]
        loop = self._links.loop
        if asyncio.get_running_loop() is loop:
            return await self._next_on_loop(task_id, index)
        fut = asyncio.run_coroutine_threadsafe(self._next_on_loop(task_id, index), loop)
        return await asyncio.wrap_future(fut)

    def peek(self, task_id: bytes, index: int) -> tuple[bool, bool]:
        """``(item index has arrived, the stream ended before it)``, without waiting."""
        st = self.streams.get(task_id)
        if st is None:
            return False, False
        if index < len(st.refs):
            return True, False
        return False, st.done

    def wait_ref(self, task_id: bytes, index: int) -> ObjectRef | None:
        """A ref that is ready once item ``index`` has arrived; None if the stream
        ended before it (the generator's completed ref is ready then)."""
        st = self.streams.get(task_id)
        if st is not None:
            if index < len(st.refs):
                return st.refs[index]
            if st.done:
                return None
        return self._links.run(self._probe(task_id, index))

    def drop(self, task_id: bytes) -> None:
        """The generator object is gone: forget its stream once it has ended."""
        self._links.loop_thread.call(self._drop, task_id)

    def _drop(self, task_id: bytes) -> None:
        st = self.streams.get(task_id)
        if st is None:
            return
        if st.done:
            del self.streams[task_id]
        else:  # items still to come are not kept; the stream goes when it ends
            st.dropped = True
            st.refs.clear()
