"""The node daemon's spiller (``node/spill.py``) over a real arena file: no processes.

Each test runs one event loop; objects are written into the arena the way a
client would (create, write, seal) and read back the way a pin would.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ember.common.aio import Supervisor
from ember.node import spill_io
from ember.node.spill import ObjectStoreFull, Spiller
from ember.object_store.shm import Arena, create_arena
from ember.object_store.spill_policy import SpillPolicy
from ember.object_store.store import PAGE, ObjectStore

CAP = 64 * PAGE


def oid(n: int) -> bytes:
    return n.to_bytes(20, "big")


def payload(n: int, size: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest() * (size // 32) + b"x" * (
        size % 32
    )


class Node:
    """A store, its arena and a spiller, as the daemon wires them."""

    def __init__(self, tmp: str, **kw: Any) -> None:
        path = os.path.join(tmp, "arena")
        create_arena(path, CAP)
        self.arena = Arena(path, CAP)
        self.store = ObjectStore(CAP)
        self.sup = Supervisor("test")
        os.mkdir(os.path.join(tmp, "session"), 0o700)
        folder = spill_io.spill_folder(os.path.join(tmp, "session"), "")
        policy = SpillPolicy(
            CAP,
            threshold=kw.pop("threshold", 1.0),
            batch_bytes=kw.pop("batch_bytes", 4 * PAGE),
            batch_max_objects=kw.pop("batch_max_objects", 16),
        )
        self.spiller = Spiller(
            self.store, self.arena, policy, folder, self.sup, node_tag="t", **kw
        )

    async def put(self, n: int, size: int) -> None:
        off = await self.spiller.create(oid(n), size)
        self.arena.view[off : off + size] = payload(n, size)
        self.store.seal(oid(n))
        self.spiller.maybe_relieve()

    async def read(self, n: int) -> bytes:
        """Pin (restoring it if spilled), copy out, unpin."""
        if self.spiller.is_spilled(oid(n)):
            await self.spiller.restore(oid(n))
        e = self.store.pin(oid(n))
        assert e is not None, f"object {n} is gone"
        data = bytes(self.arena.view[e.offset : e.offset + e.size])
        self.store.unpin(oid(n))
        self.spiller.changed()
        return data

    def files(self) -> list[str]:
        return sorted(os.listdir(self.spiller.folder))

    def close(self) -> None:
        self.sup.close()
        self.spiller.close()
        self.arena.close()


async def wait_for(cond: Callable[[], bool], timeout_s: float = 10) -> None:
    """Wait for ``cond`` (a file removal runs on a spill thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def run(
    tmp_path: Any, body: Callable[[Node], Coroutine[Any, Any, None]], **kw: Any
) -> Node:
    node = Node(str(tmp_path), **kw)

    async def main() -> None:
        try:
            await asyncio.wait_for(body(node), 30)
        finally:
            node.close()

    asyncio.run(main())
    return node


def test_objects_three_times_the_store_all_come_back_intact(tmp_path):
    sizes = [(n, (n % 5 + 1) * PAGE - 7 * n) for n in range(1, 61)]  # ~3x CAP

    async def body(node: Node) -> None:
        for n, size in sizes:
            await node.put(n, size)
        st = node.spiller.statistics()
        assert st.spilled_objects > 0
        assert st.spilled_bytes > CAP
        for n, size in reversed(sizes):
            assert await node.read(n) == payload(n, size)
        assert node.spiller.statistics().restored_objects > 0

    run(tmp_path, body)


def test_small_objects_are_batched_into_few_private_files(tmp_path):
    async def body(node: Node) -> None:
        for n in range(1, 65):
            await node.put(n, 100)  # one page each: the store is full
        await node.put(100, PAGE)  # needs one page, spills a batch of 16
        files = node.files()
        assert len(files) == 1
        st = node.spiller.statistics()
        assert (st.files, st.spilled_objects) == (1, 16)
        mode = os.stat(os.path.join(node.spiller.folder, files[0])).st_mode
        assert stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat(node.spiller.folder).st_mode) == 0o700

    run(tmp_path, body, batch_bytes=CAP)


def test_a_file_goes_when_all_its_objects_are_freed_and_the_folder_at_close(tmp_path):
    async def body(node: Node) -> None:
        for n in range(1, 65):
            await node.put(n, 100)
        await node.put(100, PAGE)
        spilled = [n for n in range(1, 65) if node.spiller.is_spilled(oid(n))]
        assert len(spilled) == 16
        for n in spilled[:-1]:
            node.store.delete(oid(n))
            node.spiller.free(oid(n))
        assert len(node.files()) == 1
        node.spiller.free(oid(spilled[-1]))
        await wait_for(lambda: node.files() == [])

    node = run(tmp_path, body, batch_bytes=CAP)
    assert not os.path.exists(node.spiller.folder)


def test_an_object_bigger_than_the_store_fails_at_once(tmp_path):
    async def body(node: Node) -> None:
        with pytest.raises(
            ObjectStoreFull, match=f"{CAP + 1} bytes can never fit"
        ) as ei:
            await node.spiller.create(oid(1), CAP + 1)
        assert str(CAP) in str(ei.value)
        assert "object_store_memory" in str(ei.value)

    run(tmp_path, body)


def test_pinned_objects_are_not_spilled_and_the_wait_ends_with_a_clear_error(tmp_path):
    asked: list[int] = []

    async def body(node: Node) -> None:
        node.spiller.ask_release = lambda: asked.append(1)
        for n in range(1, 5):
            await node.put(n, 16 * PAGE)
            node.store.pin(oid(n))  # a reader holds each one
        with pytest.raises(ObjectStoreFull, match="no room came free") as ei:
            await node.spiller.create(oid(9), PAGE)
        assert node.spiller.folder in str(ei.value)
        assert asked, "clients were not asked to drop cached mappings"
        assert node.files() == []

    run(tmp_path, body, full_timeout_s=0.3)


def test_a_waiting_create_goes_on_when_a_reader_lets_go(tmp_path):
    async def body(node: Node) -> None:
        for n in range(1, 5):
            await node.put(n, 16 * PAGE)
            node.store.pin(oid(n))

        def let_go() -> None:
            node.store.unpin(oid(2))
            node.spiller.changed()

        node.spiller.ask_release = let_go
        await node.put(9, PAGE)  # spills object 2 once it is unpinned
        assert node.spiller.is_spilled(oid(2))
        node.store.unpin(oid(1))
        assert await node.read(2) == payload(2, 16 * PAGE)

    run(tmp_path, body, full_timeout_s=10)


def test_the_high_water_mark_spills_in_the_background(tmp_path):
    async def body(node: Node) -> None:
        for n in range(1, 61):
            await node.put(n, PAGE)
        while node.spiller._relieving:
            await node.spiller._wait_changed(1)
        assert node.store.used <= node.spiller.policy.high_water
        assert node.spiller.statistics().spilled_objects >= 60 - 32

    run(tmp_path, body, threshold=0.5)


def test_a_full_disk_fails_the_create_with_the_folder_named(tmp_path, monkeypatch):
    def full(path: str, parts: Any) -> None:
        raise spill_io.SpillDiskFullError(errno.ENOSPC, f"no space left for {path}")

    monkeypatch.setattr(spill_io, "write_batch", full)

    async def body(node: Node) -> None:
        for n in range(1, 5):
            await node.put(n, 16 * PAGE)
        with pytest.raises(ObjectStoreFull, match="Free space on that disk") as ei:
            await node.spiller.create(oid(9), PAGE)
        assert node.spiller.folder in str(ei.value)
        for n in range(1, 5):  # nothing was lost
            assert await node.read(n) == payload(n, 16 * PAGE)

    run(tmp_path, body, full_timeout_s=10)


def test_a_restored_object_is_evicted_again_without_a_write(tmp_path):
    async def body(node: Node) -> None:
        for n in range(1, 5):
            await node.put(n, 16 * PAGE)
        await node.put(5, 16 * PAGE)  # spills object 1
        node.store.delete(oid(3))
        node.spiller.free(oid(3))  # room for object 1 to come back
        assert await node.read(1) == payload(1, 16 * PAGE)
        written = node.spiller.statistics().spilled_objects
        await node.put(6, 16 * PAGE)  # object 1 has a disk copy: released, not written
        assert node.spiller.is_spilled(oid(1))
        assert node.spiller.statistics().spilled_objects == written

    run(tmp_path, body)


def test_ray_spelling_of_the_spill_directory(tmp_path):
    d = str(tmp_path / "spill")
    cfg = f'{{"type": "filesystem", "params": {{"directory_path": "{d}"}}}}'
    assert spill_io.configured_directory("", "", cfg) == d
    assert spill_io.configured_directory("", "/x", cfg) == "/x"
    assert spill_io.configured_directory("/flag", "/x", cfg) == "/flag"
    lst = f'{{"type": "filesystem", "params": {{"directory_path": ["{d}", "/b"]}}}}'
    assert spill_io.configured_directory("", "", lst) == d
    with pytest.raises(ValueError, match="not supported"):
        spill_io.configured_directory("", "", '{"type": "smart_open", "params": {}}')
    with pytest.raises(ValueError, match="JSON object"):
        spill_io.configured_directory("", "", "nope")


def test_a_given_directory_gets_a_private_folder_per_session(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    folder = spill_io.spill_folder(str(tmp_path / "session_x"), str(shared))
    assert folder == str(shared / "session_x")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
