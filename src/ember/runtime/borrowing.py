"""The borrowing protocol and return escrow, both sides, around the RefCounter.

Borrower side: the first time this process sees a foreign ref it registers
with the owner (``worker.add_borrower``, acknowledged: ``_acks``), and when
its last ref dies it unregisters (``worker.remove_borrower``).  A task that
received refs inside its arguments answers only once those registrations are
acknowledged (:meth:`Borrowing.registrations_in_flight`): otherwise its
caller could drop the last ref before the owner knows of the borrower, and
the owner would free what the borrower keeps.  Owner side:
it records borrowers per connection, and forgets them when that connection
closes.  Escrow (a worker returning a value that holds refs)::

    worker (executor)                          caller (owner of the return)
    pack_one: escrow[task] += contained  --->  adopt_contained -> add_borrower(inner owner)
                                         <---  (after those acks) worker.release_escrow
    escrow.pop(task)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import (
    Address,
    BorrowRequest,
    Empty,
    ReleaseEscrowRequest,
    ReturnObject,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.runtime.links import Links
from ember.runtime.object_ref import _rebuild
from ember.runtime.ownership import RefCounter, RefEntry


class Borrowing:
    """Reference counts of one core worker and the messages they cause."""

    def __init__(
        self, links: Links, drop_object: Callable[[bytes, bool], None]
    ) -> None:
        """``drop_object(oid, owned)``: loop thread, the last reference to ``oid`` is gone."""
        self._links = links
        self._drop_object = drop_object
        self.refs = RefCounter(links.worker_id, self._on_release, self._on_borrow)
        #: refs inside the values of our task returns, until the caller borrowed them
        self.escrow: dict[bytes, list[Any]] = {}
        self._acks: list[asyncio.Future[Any]] = []
        #: one per registration begun and not yet acknowledged (any thread adds)
        self._in_flight: list[concurrent.futures.Future[None]] = []

    # -- releases -----------------------------------------------------------------------
    def _on_release(self, oid: bytes, entry: RefEntry) -> None:
        links = self._links
        if links.shutting_down:
            return
        links.loop_thread.call_lazy(self._released, oid, entry)

    def _released(self, oid: bytes, entry: RefEntry) -> None:
        if self.refs.has(oid):
            return  # re-referenced meanwhile
        self._drop_object(oid, entry.owned)
        if not entry.owned and entry.borrow_registered and entry.owner is not None:
            self._links.sup.spawn(self._send_unborrow(oid, entry.owner))

    async def _send_unborrow(self, oid: bytes, owner: Address) -> None:
        try:
            conn = await self._links.connect_to(owner)
            conn.notify(
                "worker.remove_borrower",
                BorrowRequest(oids=[oid], borrower=self._links.worker_id),
            )
        except RpcError:
            pass  # the owner is gone; so is the object

    # -- borrowing ----------------------------------------------------------------------
    def _on_borrow(self, oid: bytes, owner: Address) -> None:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._in_flight.append(done)  # at once, in the thread that saw the ref
        lt = self._links.loop_thread
        if lt.in_loop_thread():
            self._start_borrow(oid, owner, done)
        else:
            lt.call(self._start_borrow, oid, owner, done)

    def _start_borrow(
        self, oid: bytes, owner: Address, done: concurrent.futures.Future[None]
    ) -> None:
        fut = self._links.loop.create_task(self._send_borrow(oid, owner))
        self._acks.append(fut)
        fut.add_done_callback(lambda f: self._borrow_done(f, done))

    def _borrow_done(
        self, fut: asyncio.Future[Any], done: concurrent.futures.Future[None]
    ) -> None:
        try:
            self._acks.remove(fut)
        except ValueError:
            pass
        done.set_result(None)
        try:
            self._in_flight.remove(done)
        except ValueError:
            pass

    def registrations_in_flight(self) -> list[concurrent.futures.Future[None]]:
        """Any thread: the borrower registrations begun and not yet acknowledged
        (a task's reply waits for them; usually none)."""
        return list(self._in_flight) if self._in_flight else []

    async def _send_borrow(self, oid: bytes, owner: Address) -> None:
        try:
            conn = await self._links.connect_to(owner)
            await conn.call(
                "worker.add_borrower",
                BorrowRequest(oids=[oid], borrower=self._links.worker_id),
            )
        except RpcError:
            pass  # owner died: get() will say OwnerDiedError

    # -- escrow, caller side --------------------------------------------------------------
    def acks_sent(self) -> int:
        """A mark: registrations sent after it are the ones a reply's refs caused."""
        return len(self._acks)

    def adopt_contained(self, obj: ReturnObject) -> None:
        """Count the refs inside a returned value (registering as their borrower)."""
        inner = [
            _rebuild(
                r.oid,
                None
                if r.owner is None
                else (r.owner.worker_id, r.owner.node_id, r.owner.tcp, r.owner.unix),
            )
            for r in obj.contained
        ]
        self.refs.set_contained(obj.oid, inner)

    def release_escrow_after(self, mark: int, conn: Connection, task_id: bytes) -> None:
        """Tell the worker to drop its escrow once our registrations since ``mark`` are acked."""
        acks = self._acks[mark:]
        self._links.sup.spawn(self._release_escrow(acks, conn, task_id))

    async def _release_escrow(
        self, acks: list[asyncio.Future[Any]], conn: Connection, task_id: bytes
    ) -> None:
        await asyncio.gather(*acks, return_exceptions=True)
        if not conn.is_closed():
            conn.notify("worker.release_escrow", ReleaseEscrowRequest(task_id=task_id))

    # -- handlers (owner side) ---------------------------------------------------------------
    def h_add_borrower(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        borrows = conn.state.setdefault("borrows", set())
        if not borrows:
            conn.on_close(self._borrower_gone)
        for oid in req.oids:
            if self.refs.add_borrower(oid, req.borrower):
                borrows.add((oid, req.borrower))
        return Empty()

    def h_remove_borrower(self, conn: Connection, req: Any, bufs: Any) -> None:
        for oid in req.oids:
            conn.state.get("borrows", set()).discard((oid, req.borrower))
            self.refs.remove_borrower(oid, req.borrower)

    def _borrower_gone(self, conn: Connection) -> None:
        for oid, borrower in conn.state.get("borrows", ()):
            self.refs.remove_borrower(oid, borrower)

    def h_release_escrow(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.escrow.pop(req.task_id, None)
