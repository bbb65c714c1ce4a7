"""Making room in a node's store: drop copies, spill to files, restore on access.

Theory of operation.  The daemon's loop owns the store and the spill index;
threads (``max_io_workers`` of them) only move bytes between the arena and
spill files (``spill_io``).  Room is made in two cases:

- **high water**: after a seal, if the store holds more than the policy's
  high-water mark, one background task spills until it is back under it;
- **a create that does not fit** (:meth:`Spiller.create`, used by clients'
  creates, pulls of copies and restores): it plans, starts the writes, and
  waits for any change (a write done, an unpin, a free) until the object fits,
  at most ``object_store_full_timeout_s``.  When nothing is left to spill it
  asks every client holding pins to drop the mappings it caches without a
  live view (``worker.drop_cached_objects``).

Data flow of one batch::

    loop: plan -> hold every object (a pin) -> views of their extents
        |                                             |
        |                    thread: os.pwritev(file, views)   (several batches at once)
        v                                             v
    loop: record the file in the index -> unhold -> free the extents of the
          objects nobody pinned meanwhile (the others stay, with a disk copy)

A restore (a reader pinned a spilled object, or a pull wants it) creates the
extent (making room as above), reads the file into it in a thread, and seals
it; concurrent readers share one restore.  The restored object keeps its
file copy until it is freed, so evicting it again costs no write.  A file is
deleted when its last object is freed, and the node's folder at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ember.common.aio import Supervisor
from ember.node import spill_io
from ember.object_store.shm import Arena
from ember.object_store.spill_index import SpillIndex
from ember.object_store.spill_policy import (
    Candidate,
    EvictionPlan,
    SpillPolicy,
    batch_layout,
)
from ember.object_store.store import Entry, ObjectStore, StoreFullError, alloc_size

logger = logging.getLogger(__name__)

#: clients are asked to drop idle cached mappings at most this often
RELEASE_ASK_INTERVAL_S = 0.02
#: a waiting create looks again at least this often
RECHECK_S = 0.1


class ObjectStoreFull(MemoryError):
    """A create cannot be served: too big for the store, or no room could be made."""


@dataclasses.dataclass(frozen=True)
class SpillStats:
    """Counters since the daemon started, and what is on disk now."""

    folder: str
    spilled_objects: int
    spilled_bytes: int
    restored_objects: int
    restored_bytes: int
    dropped_copies: int
    files: int
    bytes_on_disk: int


@dataclasses.dataclass
class _Counters:
    spilled_objects: int = 0
    spilled_bytes: int = 0
    restored_objects: int = 0
    restored_bytes: int = 0
    dropped_copies: int = 0


class Spiller:
    """Spilling and restoring for one node's store."""

    def __init__(
        self,
        store: ObjectStore,
        arena: Arena,
        policy: SpillPolicy,
        folder: str,
        sup: Supervisor,
        *,
        full_timeout_s: float = 30.0,
        io_threads: int = 4,
        node_tag: str = "",
    ) -> None:
        self._store = store
        self._arena = arena
        self.policy = policy
        self.folder = folder
        self._sup = sup
        self._timeout_s = full_timeout_s
        self._pool = ThreadPoolExecutor(max(1, io_threads), "spill-io")
        self._tag = node_tag
        self.index = SpillIndex()
        #: objects being written now, and those of them freed meanwhile
        self._writing: set[bytes] = set()
        self._writing_bytes = 0
        self._freed_while_writing: set[bytes] = set()
        self._restores: dict[bytes, asyncio.Future[None]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._relieving = False
        self._files = 0
        #: the last write error (the disk is full, ...), cleared by a good write
        self.disk_error = ""
        self._disk_error_at = float("-inf")
        self._counts = _Counters()
        #: set by the daemon: ask clients to drop cached mappings nobody uses
        self.ask_release: Callable[[], None] = lambda: None
        self._asked_at = float("-inf")

    # -- events -------------------------------------------------------------------
    def changed(self) -> None:
        """Memory may have come free (a write done, an unpin, a free): wake creates."""
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def _wait_changed(self, timeout_s: float) -> None:
        w = asyncio.get_running_loop().create_future()
        self._waiters.append(w)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(w, max(0.0, timeout_s))

    def maybe_relieve(self) -> None:
        """Start a background spill if the store is above its high-water mark.

        Called after a seal, and after unpins (the objects a client let go of
        at our request are spilled then, before a create has to wait).
        """
        if not self._relieving and self.policy.over_high_water(self._store.used):
            self._relieving = True
            self._sup.spawn(self._relieve(), name="spill-high-water")

    async def _relieve(self) -> None:
        started = asyncio.get_running_loop().time()
        try:
            while self._disk_error_at < started:  # a failed write ends it
                need = self.policy.need_for_high_water(self._store.used)
                need -= self._writing_bytes
                plan = self.policy.plan(self._candidates(), need, take_fresh=False)
                if plan.empty:
                    if need > 0:
                        self._ask_release()  # only pinned objects are left
                    return
                writes = self._start(plan)
                if writes:
                    await asyncio.wait(writes)
        finally:
            self._relieving = False

    # -- queries ------------------------------------------------------------------
    def is_spilled(self, oid: bytes) -> bool:
        """Is ``oid`` on disk only (not in memory, or being restored)?"""
        if oid not in self.index:
            return False
        e = self._store.entries.get(oid)
        return e is None or not e.sealed

    def _candidates(self) -> list[Candidate]:
        index, writing = self.index, self._writing
        return [
            Candidate(oid, e.alloc, e.last_use, e.secondary, oid in index, e.fresh)
            for oid, e in self._store.entries.items()
            if e.sealed and not e.deleted and e.pins == 0 and oid not in writing
        ]

    # -- making room --------------------------------------------------------------
    async def create(self, oid: bytes, size: int, secondary: bool = False) -> int:
        """``store.create``, waiting (bounded) while spilling makes room; the offset.

        Raises:
            ObjectStoreFull: the object is bigger than the store, the spill disk
                is full, or no room came free within the timeout.
        """
        store = self._store
        try:
            return store.create(oid, size, secondary)
        except StoreFullError:
            pass
        alloc = alloc_size(size)
        if alloc > store.capacity:
            raise ObjectStoreFull(self._too_big(size))
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeout_s
        while True:
            if store.fits(size):
                return store.create(oid, size, secondary)
            if self._disk_error_at >= started and not self._writing:
                raise ObjectStoreFull(self._full_message(size, disk=True))
            # what the writes in flight will free is counted as freed
            need = self.policy.need_for_create(store.used, alloc) - self._writing_bytes
            plan = self.policy.plan(self._candidates(), need)
            self._start(plan)
            if store.fits(size):
                continue
            if plan.freed_bytes < need:
                self._ask_release()
            left = deadline - loop.time()
            if left <= 0:
                raise ObjectStoreFull(self._full_message(size, disk=False))
            await self._wait_changed(min(left, RECHECK_S))

    def _ask_release(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._asked_at >= RELEASE_ASK_INTERVAL_S:
            self._asked_at = now
            self.ask_release()

    def _start(self, plan: EvictionPlan) -> list[asyncio.Task[None]]:
        """Carry out ``plan``: drops and releases now, writes in the background."""
        store = self._store
        for oid in plan.drop:
            store.delete(oid)
            self._counts.dropped_copies += 1
        for oid in plan.release:
            store.delete(oid)  # the index keeps its file copy
        if plan.drop or plan.release:
            self.changed()
        tasks = []
        for batch in plan.batches:
            # held now, so nothing frees or reuses them before the write starts
            entries = [(oid, store.entries[oid]) for oid in batch]
            for oid, e in entries:
                store.hold(oid)
                self._writing.add(oid)
                self._writing_bytes += e.alloc
            tasks.append(self._sup.spawn(self._write(entries), name="spill-write"))
        return tasks

    async def _write(self, entries: list[tuple[bytes, Entry]]) -> None:
        store = self._store
        oids = [oid for oid, _ in entries]
        offsets, _ = batch_layout(e.size for _, e in entries)
        self._files += 1
        path = os.path.join(self.folder, f"{self._tag}-{self._files:06d}.spill")
        views = [self._arena.view[e.offset : e.offset + e.size] for _, e in entries]
        ok = False
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._pool,
                spill_io.write_batch,
                path,
                list(zip(offsets, views, strict=True)),
            )
            ok = True
            self.disk_error = ""
        except OSError as exc:
            self.disk_error = f"{type(exc).__name__}: {exc}"
            self._disk_error_at = asyncio.get_running_loop().time()
            logger.warning("spilling %d objects to %s failed: %s", len(oids), path, exc)
        finally:
            for v in views:
                with contextlib.suppress(BufferError):
                    v.release()
            self._writing.difference_update(oids)
            self._writing_bytes -= sum(e.alloc for _, e in entries)
        freed = self._freed_while_writing.intersection(oids)
        self._freed_while_writing.difference_update(oids)
        if ok:
            live = [
                (oid, off, e.size)
                for (oid, e), off in zip(entries, offsets, strict=True)
                if oid not in freed
            ]
            if live:
                self.index.add_file(path, live)
                self._counts.spilled_objects += len(live)
                self._counts.spilled_bytes += sum(n for _, _, n in live)
            else:
                self._pool.submit(spill_io.remove_file, path)
        for oid, e in entries:
            store.unpin(oid)  # our hold
            if ok and store.entries.get(oid) is e and e.pins == 0 and not e.deleted:
                store.delete(oid)  # in the file now; a reader restores it
        self.changed()

    # -- restoring ----------------------------------------------------------------
    async def restore(self, oid: bytes) -> None:
        """Bring a spilled object back into the arena (one restore per object)."""
        fut = self._restores.get(oid)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._restores[oid] = fut
            self._sup.spawn(self._restore(oid, fut), name="spill-restore")
        await asyncio.shield(fut)

    async def _restore(self, oid: bytes, fut: asyncio.Future[None]) -> None:
        try:
            loc = self.index.location(oid)
            if loc is not None and oid not in self._store.entries:
                try:
                    offset = await self.create(oid, loc.size)
                except KeyError:
                    # Another copy of it was made here while we waited for room
                    # (a pull, or its task run again): the reader pins that one.
                    fut.set_result(None)
                    return
                if self.index.location(oid) is not loc:  # freed while we made room
                    self._store.delete(oid)
                    fut.set_result(None)
                    return
                self._store.hold(oid)
                dest = self._arena.view[offset : offset + loc.size]
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self._pool, spill_io.read_into, loc.path, loc.offset, dest
                    )
                except BaseException:
                    self._store.delete(oid)
                    raise
                finally:
                    with contextlib.suppress(BufferError):
                        dest.release()
                    self._store.seal(oid)
                    # until its reader pins it (the entry exists: we hold it)
                    self._store.entries[oid].fresh = True
                    self._store.unpin(oid)
                self._counts.restored_objects += 1
                self._counts.restored_bytes += loc.size
            fut.set_result(None)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            del self._restores[oid]

    def read_chunk(
        self, oid: bytes, offset: int, length: int
    ) -> asyncio.Future[bytearray]:
        """Bytes of a spilled object straight from its file (serving another node)."""
        loc = self.index.location(oid)
        if loc is None or offset + length > loc.size:
            raise ValueError(f"no such chunk of spilled object {oid.hex()}")
        return asyncio.get_running_loop().run_in_executor(
            self._pool, spill_io.read_range, loc.path, loc.offset + offset, length
        )

    def spilled_size(self, oid: bytes) -> int | None:
        loc = self.index.location(oid)
        return None if loc is None else loc.size

    # -- freeing ------------------------------------------------------------------
    def free(self, oid: bytes) -> None:
        """The owner freed ``oid``: forget its file copy (and delete an emptied file)."""
        if oid in self._writing:
            self._freed_while_writing.add(oid)
        path = self.index.forget(oid)
        if path is not None:
            self._pool.submit(spill_io.remove_file, path)

    def close(self) -> None:
        """Wait for the spill threads and delete the node's spill folder."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        spill_io.remove_folder(self.folder)

    # -- reporting ----------------------------------------------------------------
    def statistics(self) -> SpillStats:
        c, ix = self._counts, self.index.statistics()
        return SpillStats(
            folder=self.folder,
            spilled_objects=c.spilled_objects,
            spilled_bytes=c.spilled_bytes,
            restored_objects=c.restored_objects,
            restored_bytes=c.restored_bytes,
            dropped_copies=c.dropped_copies,
            files=ix.files,
            bytes_on_disk=ix.bytes,
        )

    def _too_big(self, size: int) -> str:
        return (
            f"An object of {size} bytes can never fit in this node's object store, "
            f"which holds {self._store.capacity} bytes in all (spilling cannot help: "
            "an object must fit in memory to be created or read). Start the node with "
            f"a larger object_store_memory (at least {alloc_size(size)} bytes), or "
            "split the value into smaller objects."
        )

    def _full_message(self, size: int, disk: bool) -> str:
        st = self._store
        pinned = sum(e.alloc for e in st.entries.values() if e.pins > 0)
        if disk:
            why = (
                f"spilling to {self.folder} failed ({self.disk_error}). Free space on "
                "that disk, or spill elsewhere (ember start --object-spilling-directory "
                "DIR, or init(_system_config={'object_spilling_directory': DIR}))"
            )
        else:
            why = (
                f"no room came free within {self._timeout_s:g} s: {pinned} bytes are "
                "pinned by values in use (results of get held by your program, "
                "arguments of running tasks), which cannot be spilled "
                f"to {self.folder}. Drop values you no longer need, or start with a "
                "larger object_store_memory"
            )
        return (
            f"The object store is full: an object of {size} bytes does not fit "
            f"({st.used} of {st.capacity} bytes in use), and {why}."
        )
