"""A create of an object the node's store has an entry for already (``node/local_objects.py``).

That happens when lineage runs a task again while a copy of its result is
still here, when a retried task's first worker died half-way through writing
its result, and when a pull or restore of the same object is in flight. The
handlers run on a real store, arena and spiller; the client connection is a
stand-in with the four members the handlers use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from tests.unit.test_spiller import Node, oid, payload, wait_for

from ember.node.local_objects import LocalObjects
from ember.object_store.store import PAGE
from ember.protocol.messages import (
    CreateObjectRequest,
    GetObjectsRequest,
    ObjectIdsRequest,
    SealObjectRequest,
)

SIZE = 3 * PAGE + 5


class Client:
    """What the handlers need of a connection: state, on_close, is_closed, notify."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.notes: list[tuple[str, Any]] = []
        self._closing: list[Callable[[Client], None]] = []
        self._closed = False

    def on_close(self, cb: Callable[[Client], None]) -> None:
        self._closing.append(cb)

    def is_closed(self) -> bool:
        return self._closed

    def notify(self, method: str, msg: Any) -> None:
        self.notes.append((method, msg))

    def close(self) -> None:
        self._closed = True
        for cb in self._closing:
            cb(self)


async def reply_of(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


class Objects:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.lo = LocalObjects(node.store, node.spiller)

    async def create(self, client: Client, n: int) -> Any:
        req = CreateObjectRequest(oid=oid(n), size=SIZE, owner=b"w" * 28)
        return await reply_of(self.lo.h_create(client, req, []))  # type: ignore[arg-type]

    async def write(self, client: Client, n: int) -> None:
        reply = await self.create(client, n)
        assert not reply.exists
        self.node.arena.view[reply.offset : reply.offset + SIZE] = payload(n, SIZE)
        self.lo.h_seal(client, SealObjectRequest(oid=oid(n)), [])  # type: ignore[arg-type]

    async def pin(self, client: Client, n: int) -> bytes:
        req = GetObjectsRequest(oids=[oid(n)])
        found = (await reply_of(self.lo.h_get(client, req, []))).found  # type: ignore[arg-type]
        assert found[0] is not None, f"object {n} is not here"
        loc = found[0]
        return bytes(self.node.arena.view[loc.offset : loc.offset + loc.size])


def run(tmp_path: Any, body: Callable[[Objects], Coroutine[Any, Any, None]]) -> None:
    node = Node(str(tmp_path))

    async def main() -> None:
        try:
            await asyncio.wait_for(body(Objects(node)), 30)
        finally:
            node.close()

    asyncio.run(main())


def test_a_second_create_of_a_sealed_object_answers_exists_and_keeps_its_bytes(
    tmp_path,
):
    async def body(objs: Objects) -> None:
        first, second, reader = Client(), Client(), Client()
        await objs.write(first, 1)
        used = objs.node.store.used
        reply = await objs.create(second, 1)
        assert reply.exists
        assert reply.offset == -1
        assert objs.node.store.used == used  # no second extent
        assert await objs.pin(reader, 1) == payload(1, SIZE)

    run(tmp_path, body)


def test_a_copy_freed_while_a_reader_maps_it_comes_back_for_its_rerun(tmp_path):
    async def body(objs: Objects) -> None:
        writer, reader = Client(), Client()
        await objs.write(writer, 2)
        assert await objs.pin(reader, 2) == payload(2, SIZE)
        objs.lo.free([oid(2)])  # freed, but the reader's pin keeps the extent
        assert not objs.node.store.contains(oid(2))
        reply = await objs.create(Client(), 2)  # its task run again by lineage
        assert reply.exists
        objs.lo.h_release(reader, ObjectIdsRequest(oids=[oid(2)]), [])  # type: ignore[arg-type]
        assert await objs.pin(Client(), 2) == payload(2, SIZE)

    run(tmp_path, body)


def test_what_a_dead_writer_left_unsealed_is_dropped_and_a_retry_can_write_it(
    tmp_path,
):
    async def body(objs: Objects) -> None:
        dying = Client()
        reply = await objs.create(dying, 3)
        assert not reply.exists  # ...and the worker is killed before it seals
        dying.close()
        assert oid(3) not in objs.node.store.entries
        assert objs.node.store.used == 0
        await objs.write(Client(), 3)  # the retried task's worker
        assert await objs.pin(Client(), 3) == payload(3, SIZE)

    run(tmp_path, body)


def test_a_create_during_another_write_waits_for_that_copy(tmp_path):
    async def body(objs: Objects) -> None:
        first = Client()
        reply = await objs.create(first, 4)
        second = asyncio.ensure_future(objs.create(Client(), 4))
        await asyncio.sleep(0.05)
        assert not second.done()  # it waits while the first writer writes
        objs.node.arena.view[reply.offset : reply.offset + SIZE] = payload(4, SIZE)
        objs.lo.h_seal(first, SealObjectRequest(oid=oid(4)), [])  # type: ignore[arg-type]
        assert (await second).exists
        assert await objs.pin(Client(), 4) == payload(4, SIZE)

    run(tmp_path, body)


def test_a_create_during_a_write_that_is_given_up_makes_a_new_copy(tmp_path):
    async def body(objs: Objects) -> None:
        first = Client()
        await objs.create(first, 5)
        second = asyncio.ensure_future(objs.create(Client(), 5))
        await asyncio.sleep(0.05)
        objs.lo.h_abort(first, SealObjectRequest(oid=oid(5)), [])  # type: ignore[arg-type]
        await wait_for(second.done)
        reply = second.result()
        assert not reply.exists
        assert reply.offset >= 0

    run(tmp_path, body)
