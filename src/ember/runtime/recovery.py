"""Recovery of lost owned objects: re-run the task that made them, or say why not.

An owned object is *lost* when the node holding its primary copy is gone (a
read or a borrower's pull from it failed) and no other node holds a copy.
The owner then looks up the task that made it in its :class:`Lineage`:

- a kept record with a retry left: the object's entry turns pending again,
  its owned arguments that are lost too (freed, or stored only on a dead node)
  are put back (small values copied into the record) or rebuilt first
  (recursively), and the task is submitted again
  (``TaskSubmitter.resubmit``); a ``get`` waiting on the entry then returns
  the new value.  Each re-execution takes one of the task's retries.
- no retry left: ``ObjectReconstructionFailedMaxAttemptsExceededError``;
- lineage evicted (byte cap): ``ObjectReconstructionFailedLineageEvictedError``;
- a ``put`` object (no task made it): ``ObjectLostError`` naming the node;
- anything else (an actor task's return): ``ObjectReconstructionFailedError``.

The error is stored in the entry, so every reader sees it.  Runs on the loop
thread only.  Its one I/O is asking the control service whether a node whose
copy could not be read is gone (a failed read alone rebuilds nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember import exceptions as exc_mod
from ember.protocol.messages import Empty
from ember.rpc.errors import RpcError
from ember.runtime.lineage import Lineage, LineageRecord
from ember.runtime.links import Links
from ember.runtime.memory_store import MemoryStore, ObjEntry
from ember.runtime.ownership import RefCounter


def lost_error(
    cls: type[exc_mod.ObjectLostError], oid: bytes, owner: str, detail: str
) -> Any:
    """An ``ObjectLostError`` (sub)class built with Ray's parameter names, with ``detail``."""
    err = cls(object_ref_hex=oid.hex(), owner_address=owner, call_site="")
    err.message = detail
    err.args = (str(err),)
    return err


def is_put_id(oid: bytes) -> bool:
    """Index 0 is a ``put`` value (or a stored argument blob), never a task's return."""
    return oid[16:20] == b"\0\0\0\0"


def reset_pending(e: ObjEntry) -> None:
    """Turn a ready entry back into a pending one (its value is to be made again)."""
    e.data, e.bufs, e.is_error, e.accessed = None, [], False, False
    e.node_id, e.size, e.mapping, e.copies = b"", 0, None, None
    e.ready = False


class Recovery:
    """Rebuilds the lost objects of one owner (loop thread)."""

    def __init__(
        self,
        store: MemoryStore,
        lineage: Lineage,
        refs: RefCounter,
        links: Links,
        set_error: Callable[[bytes, BaseException], None],
    ) -> None:
        self._entries = store.entries
        self.lineage = lineage
        self._refs = refs
        self._links = links
        self._set_error = set_error
        #: set by the task submitter: run a recorded task again / is it running now
        self.resubmit: Callable[[LineageRecord], None] | None = None
        self.running: Callable[[bytes], bool] = lambda task_id: False
        #: re-executions started (statistics)
        self.reconstructions = 0
        #: objects read from a secondary copy since their primary was lost; such a
        #: copy may have been dropped (store pressure) on a node that lives on
        self._promoted: set[bytes] = set()

    # -- lineage (called by the submitter when a task finished) -------------------------
    def record(
        self,
        task_id: bytes,
        spec: Any,
        frames: list[Any],
        return_oids: list[bytes],
        arg_oids: list[bytes],
        retries_left: int,
        stored: bool,
    ) -> None:
        """Before the returns are stored (the arguments still count): keep the lineage.

        ``stored``: a return went to a node's arena.  Only such a task is
        recorded; the small owned values among its arguments are copied into
        the record instead of keeping their producers' lineage.
        """
        lineage = self.lineage
        if lineage.has(task_id):  # it ran again: only its retries changed
            lineage.record(task_id, spec, frames, return_oids, [], [], [], retries_left)
            return
        if not stored:
            return
        has = self._refs.has
        live = [o for o in return_oids if has(o)]
        if not live:
            return
        owners = [self._owner_of(a) for a in arg_oids]
        values: dict[bytes, Any] | None = None
        extra = 0
        if retries_left != 0:
            values, extra = self._small_values(arg_oids, owners)
        # Large arguments travel as a stored blob no task could make again: keep it.
        pinned: list[bytes] = []
        blob = spec.args_ref
        if blob is not None and retries_left != 0:
            pinned = [blob.oid]
            e = self._entries.get(blob.oid)
            extra += e.size if e is not None else 0
            self._refs.add_submitted(pinned, [None])
        lineage.record(
            task_id,
            spec,
            frames,
            return_oids,
            live,
            arg_oids,
            owners,
            retries_left,
            pinned,
            extra,
            values,
        )

    def _small_values(
        self, arg_oids: list[bytes], owners: list[Any]
    ) -> tuple[dict[bytes, Any] | None, int]:
        """Copies of the inline values among our arguments, and their bytes."""
        values: dict[bytes, Any] | None = None
        nbytes = 0
        entries = self._entries
        for a, owner in zip(arg_oids, owners, strict=True):
            e = entries.get(a)
            if owner is not None or e is None or not e.ready or e.data is None:
                continue
            if self._refs.contains_refs(a):
                continue  # its inner refs could be gone by then
            if values is None:
                values = {}
            values[a] = (e.data, e.bufs, e.is_error)
            nbytes += len(e.data) + sum(memoryview(b).nbytes for b in e.bufs)
        return values, nbytes

    def released(self, oid: bytes) -> None:
        """The last reference to an owned object is gone."""
        self.lineage.released(oid)
        if self._promoted:
            self._promoted.discard(oid)

    def _owner_of(self, oid: bytes) -> Any:
        e = self._refs.entries.get(oid)
        return None if e is None or e.owned else e.owner

    # -- losses -------------------------------------------------------------------------
    async def lost_if_gone(self, oid: bytes, node_id: bytes) -> None:
        """A read of ``oid`` at ``node_id`` failed: :meth:`lost`, if that node is gone
        (or it was a secondary copy, which its node may have dropped)."""
        if oid in self._promoted or await self.node_gone(node_id):
            self.lost(oid, node_id)

    async def node_gone(self, node_id: bytes) -> bool:
        """Whether ``node_id`` died, as the control service says (asked if not told yet)."""
        links = self._links
        if node_id in links.dead_nodes:
            return True
        try:
            reply, _ = await links.control.call("control.get_nodes", Empty())
        except RpcError:
            return True  # no control service to ask: the failed read is all we know
        if any(n.node_id == node_id and n.alive for n in reply.nodes):
            return False
        links.dead_nodes.add(node_id)
        return True

    def before_submit(self, ref_args: list[Any]) -> None:
        """A task is submitted after a node died: rebuild its owned arguments that were
        only there first, so that it waits for them before taking a worker (a
        worker waiting for them could hold the very CPU their task needs)."""
        entries, dead = self._entries, self._links.dead_nodes
        for r in ref_args:
            e = entries.get(r.oid)
            if e is not None and e.stored() and e.node_id in dead:
                self.lost(r.oid, e.node_id)

    def lost(self, oid: bytes, node_id: bytes) -> None:
        """The copy of owned ``oid`` at ``node_id`` cannot be read: relocate or rebuild it."""
        e = self._entries.get(oid)
        if e is None or not e.stored() or e.node_id != node_id:
            return  # freed, being rebuilt already, or moved since
        dead = self._links.dead_nodes
        alive = [c for c in e.copies or () if c != node_id and c not in dead]
        if alive:
            e.node_id, e.copies = alive[0], alive[1:] or None
            self._promoted.add(oid)
            return
        self._promoted.discard(oid)
        rec = self.lineage.producer(oid)
        if rec is None:
            self.fail(oid, self.unrecoverable(oid, node_id))
            return
        self._rerun(rec, node_id)

    def unrecoverable(self, oid: bytes, node_id: bytes) -> BaseException:
        """Why an object without a kept record cannot be rebuilt."""
        node = node_id.hex() if node_id else "unknown"
        owner = self._owner_text()
        if self.lineage.was_evicted(oid):
            return lost_error(
                exc_mod.ObjectReconstructionFailedLineageEvictedError,
                oid,
                owner,
                f"Object {oid.hex()} was lost with node {node} and cannot be rebuilt: "
                "the lineage of the task that made it was evicted to keep its owner's "
                f"lineage under {self.lineage.max_bytes} bytes. Raise "
                "EMBER_MAX_LINEAGE_BYTES (default 1 GiB), or keep fewer objects alive.",
            )
        if is_put_id(oid):
            return lost_error(
                exc_mod.ObjectLostError,
                oid,
                owner,
                f"Object {oid.hex()} was created by put() and its only copy was on node "
                f"{node}, which died or became unreachable. A put object has no lineage "
                "to rebuild it from: return the value from a task if it must survive "
                "node failures.",
            )
        return lost_error(
            exc_mod.ObjectReconstructionFailedError,
            oid,
            owner,
            f"Object {oid.hex()} was lost with node {node} and cannot be rebuilt: it was "
            "returned by an actor task or a streaming task, which ember does not re-run "
            "for lost objects.",
        )

    def _max_attempts(self, oid: bytes, rec: LineageRecord, node: str) -> BaseException:
        name = rec.name or "?"
        return lost_error(
            exc_mod.ObjectReconstructionFailedMaxAttemptsExceededError,
            oid,
            self._owner_text(),
            f"Object {oid.hex()} was lost with node {node} and cannot be rebuilt: the "
            f"task {name!r} that made it has no retries left (each re-execution takes "
            "one). Raise its max_retries, e.g. @ember.remote(max_retries=5), or -1 for "
            "no limit.",
        )

    def fail(self, oid: bytes, error: BaseException) -> None:
        """The object cannot be had: its entry holds ``error`` for every reader."""
        e = self._entries.get(oid)
        if e is None:
            return
        reset_pending(e)
        self._set_error(oid, error)

    def _owner_text(self) -> str:
        a = self._links.address
        return "" if a is None else (a.tcp or a.unix)

    def _rerun(self, rec: LineageRecord, node_id: bytes) -> None:
        """Run ``rec``'s task again for its lost returns, rebuilding lost arguments first."""
        entries = self._entries
        dead = self._links.dead_nodes
        if self.running(rec.task_id):
            return  # already running again: its returns will fill the pending entries
        node = node_id.hex() if node_id else "unknown"
        gone = [
            o
            for o in rec.return_oids
            if (oe := entries.get(o)) is not None
            and (
                not oe.ready
                or (oe.stored() and (oe.node_id == node_id or oe.node_id in dead))
            )
        ]
        if not self.lineage.take_attempt(rec):
            for o in gone:
                self.fail(o, self._max_attempts(o, rec, node))
            return
        for o in gone:
            oe = entries[o]
            if oe.ready:
                reset_pending(oe)
        # The arguments count as submitted again (this keeps their entries alive).
        self._refs.add_submitted(rec.arg_oids, rec.arg_owners)
        for a, owner in zip(rec.arg_oids, rec.arg_owners, strict=True):
            if owner is not None:
                continue  # borrowed: its owner rebuilds it if the worker finds it lost
            ae = entries.get(a)
            if ae is None and rec.values and a in rec.values:  # a small value: put back
                ae = entries[a] = ObjEntry()
                ae.data, ae.bufs, ae.is_error = rec.values[a]
                ae.size, ae.ready = len(ae.data), True
            elif ae is None:  # freed since: make it again from its own lineage
                parent = self.lineage.producer(a)
                if parent is not None:  # (else the task finds it freed, and says so)
                    entries[a] = ObjEntry()
                    self._rerun(parent, b"")
            elif ae.stored() and ae.node_id in dead:
                self.lost(a, ae.node_id)
        self.reconstructions += 1
        assert self.resubmit is not None
        self.resubmit(rec)
