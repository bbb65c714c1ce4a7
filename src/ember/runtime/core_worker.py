"""The core worker: the runtime every driver and worker process carries.

It owns objects (``objects``, ``refs``), submits tasks (``tasks``) and actor
calls (``actor_calls``), and serves ``worker.*`` requests from other
processes: object values for borrowers, borrower registration, streamed
generator items, and (in workers) task execution via an executor that
registers its own handlers.  All of its state is mutated on its loop thread
(see ``objects.py`` for the one exception).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from ember.common.aio import Supervisor
from ember.common.config import Config
from ember.common.ids import object_id_for, random_id
from ember.common.private_files import make_private
from ember.object_store.shm import Arena
from ember.protocol.messages import (
    SCHEMA,
    Address,
    BorrowRequest,
    Empty,
    GetObjectReply,
    ReleaseEscrowRequest,
    ReturnObject,
    SubscribeLogsRequest,
    TaskReply,
    TaskSpec,
)
from ember.rpc.connection import Connection, ConnectionPool, Server, connect
from ember.rpc.errors import RpcError
from ember.runtime import current
from ember.runtime.actor_handles import ActorHandleCounts
from ember.runtime.actor_submitter import ActorSubmitter
from ember.runtime.loop_thread import LoopThread
from ember.runtime.object_ref import ObjectRef, _rebuild
from ember.runtime.objects import Objects
from ember.runtime.ownership import RefCounter, RefEntry
from ember.runtime.submitter import TaskSubmitter

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


class CoreWorker:
    """Runtime of one driver or worker process."""

    def __init__(
        self,
        *,
        is_driver: bool,
        token: bytes,
        node_unix: str,
        control_address: str,
        session_dir: str,
        node_ip: str,
        config: Config,
        namespace: str = "",
        log_to_driver: bool = True,
    ) -> None:
        self.is_driver = is_driver
        self.token = token
        self.node_unix = node_unix
        self.control_address = control_address
        self.session_dir = session_dir
        self.node_ip = node_ip
        self.config = config
        self.namespace = namespace
        self.log_to_driver = log_to_driver
        self.worker_id = random_id()
        self.node_id = b""
        self.job_id = b""
        self.shutting_down = False
        self.refs = RefCounter(self.worker_id, self._on_release, self._on_borrow)
        self.objects = Objects(self)
        self.tasks = TaskSubmitter(self)
        self.actor_calls = ActorSubmitter(self)
        self.generators: dict[bytes, GenState] = {}
        self.escrow: dict[bytes, list[Any]] = {}
        self.actor_handles = ActorHandleCounts(self._collect_actor)
        self._borrow_acks: list[asyncio.Future[Any]] = []
        self._peer_nodes: dict[bytes, bytes] = {}
        self._node_addresses: dict[bytes, str] = {}
        self.handlers: dict[str, Any] = {
            "worker.get_object": self._h_get_object,
            "worker.add_borrower": self._h_add_borrower,
            "worker.remove_borrower": self._h_remove_borrower,
            "worker.generator_item": self._h_generator_item,
            "worker.release_escrow": self._h_release_escrow,
            "worker.log_lines": self._h_log_lines,
            "worker.node_died": self._h_node_died,
            "worker.add_location": self._h_add_location,
        }

        def pool() -> ConnectionPool:
            return ConnectionPool(
                token=token,
                schema=SCHEMA,
                handlers=self.handlers,
                timeout_s=config.connect_timeout_s,
            )

        #: other core workers, by worker id
        self._peers = pool()
        #: other nodes' daemons, by node id
        self._nodes = pool()
        self.loop_thread: LoopThread = None  # type: ignore[assignment]
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.sup: Supervisor = None  # type: ignore[assignment]
        self.node_conn: Connection = None  # type: ignore[assignment]
        self.control: Connection = None  # type: ignore[assignment]
        self.server: Server = None  # type: ignore[assignment]
        self.arena: Arena = None  # type: ignore[assignment]
        self.address: Address = None  # type: ignore[assignment]
        self.unix_path = ""

    # -- lifecycle --------------------------------------------------------------------
    def start(self, store_path: str = "", store_bytes: int = 0) -> None:
        self.loop_thread = LoopThread()
        self.loop = self.loop_thread.loop
        current.set_worker(self)
        self.run(
            self._start(store_path, store_bytes),
            timeout=self.config.connect_timeout_s * 3,
        )

    async def _start(self, store_path: str, store_bytes: int) -> None:
        self.sup = Supervisor("core-worker")
        self.server = Server(token=self.token, schema=SCHEMA, handlers=self.handlers)
        sock_dir = os.path.join(self.session_dir, "sockets")
        os.makedirs(sock_dir, exist_ok=True)
        self.unix_path = os.path.join(sock_dir, f"w-{self.worker_id.hex()[:12]}")
        unix = await self.server.listen(f"unix:{self.unix_path}")
        make_private(self.unix_path)
        # A cluster reached through a unix socket is one machine: no TCP port.
        tcp = ""
        if not self.control_address.startswith("unix:"):
            tcp = await self.server.listen(f"tcp:{self.node_ip}:0")
        self.node_conn = await connect(
            f"unix:{self.node_unix}",
            token=self.token,
            schema=SCHEMA,
            handlers=self.handlers,
            timeout=self.config.connect_timeout_s,
        )
        self.control = await connect(
            self.control_address,
            token=self.token,
            schema=SCHEMA,
            handlers=self.handlers,
            timeout=self.config.connect_timeout_s,
        )
        if self.is_driver:
            stats, _ = await self.node_conn.call("node.get_stats", Empty())
            self.node_id = stats.node_id
            store_path, store_bytes = stats.store_path, stats.store_bytes
        self.address = Address(
            worker_id=self.worker_id, node_id=self.node_id, tcp=tcp, unix=unix
        )
        self.arena = Arena(store_path, store_bytes)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop from a user thread."""
        if self.loop_thread.in_loop_thread():
            raise RuntimeError(
                "blocking ember call from the event-loop thread; use await"
            )
        return self.loop_thread.run(coro, timeout)

    async def register_job(self, namespace: str, sys_path: list[str]) -> None:
        from ember.protocol.messages import KvPutRequest, RegisterJobRequest
        from ember.runtime.serialization import dumps_plain

        reply, _ = await self.control.call(
            "control.register_job",
            RegisterJobRequest(
                namespace=namespace,
                driver_pid=os.getpid(),
                entrypoint=" ".join(sys.argv),
            ),
        )
        self.job_id = reply.job_id
        self.namespace = reply.namespace
        await self.control.call(
            "control.kv_put",
            KvPutRequest(
                namespace="job",
                key=self.job_id,
                value=dumps_plain(
                    {
                        "sys_path": sys_path,
                        "cwd": os.getcwd(),
                        "namespace": self.namespace,
                        "driver": [
                            self.address.worker_id,
                            self.address.node_id,
                            self.address.tcp,
                            self.address.unix,
                        ],
                    }
                ),
            ),
        )
        if self.log_to_driver:
            await self.node_conn.call(
                "node.subscribe_logs", SubscribeLogsRequest(job_id=self.job_id)
            )

    def shutdown(self) -> None:
        self.shutting_down = True
        try:
            self.run(self._close(), timeout=5)
        except (TimeoutError, RuntimeError, RpcError):
            pass
        current.set_worker(None)
        self.loop_thread.stop()
        if self.arena is not None:
            self.arena.close()

    async def _close(self) -> None:
        self.tasks.return_all_leases()
        if self.sup is not None:
            self.sup.close()
        self._peers.close_all()
        self._nodes.close_all()
        if self.server is not None:
            self.server.close()
        for c in (self.node_conn, self.control):
            if c is not None:
                c.close()
        await asyncio.sleep(0)
        try:
            os.unlink(self.unix_path)
        except FileNotFoundError:
            pass

    # -- peers ----------------------------------------------------------------------------
    async def connect_to(self, address: Address) -> Connection:
        """A cached connection to another core worker (unix socket on the same node)."""
        conn = self._peers.cached(address.worker_id)
        if conn is not None:
            return conn
        self._peer_nodes[address.worker_id] = address.node_id
        same_node = address.unix and address.node_id == self.node_id
        return await self._peers.get(
            address.worker_id, address.unix if same_node else address.tcp
        )

    async def connect_node(self, node_id: bytes, address: str) -> Connection:
        """A cached connection to a node daemon (our own node's unix socket, or TCP)."""
        if node_id == self.node_id:
            return self.node_conn
        return await self._nodes.get(node_id, address)

    async def node_address(self, node_id: bytes) -> str:
        addr = self._node_addresses.get(node_id)
        if addr is None:
            reply, _ = await self.control.call("control.get_nodes", Empty())
            self._node_addresses = {n.node_id: n.address for n in reply.nodes}
            addr = self._node_addresses.get(node_id)
        if addr is None:
            raise RpcError(
                f"node {node_id.hex()[:8]} is unknown to the control service"
            )
        return addr

    # -- replies and generators -------------------------------------------------------
    def store_task_reply(
        self,
        spec: TaskSpec,
        reply: TaskReply,
        frames: list[Any],
        conn: Connection | None,
    ) -> None:
        pos = 0
        acks_before = len(self._borrow_acks)
        had_contained = False
        for obj in reply.returns:
            pos = self.objects.set_return(obj, frames, pos)
            if obj.contained:
                had_contained = True
                self._adopt_contained(obj)
        if spec.streaming:
            st = self.generators.setdefault(spec.task_id, GenState())
            st.done = True
            st.wake()
        if had_contained and conn is not None:
            acks = self._borrow_acks[acks_before:]
            self.sup.spawn(self._release_escrow_after(acks, conn, spec.task_id))

    def _adopt_contained(self, obj: ReturnObject) -> None:
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

    async def _release_escrow_after(
        self, acks: list[asyncio.Future[Any]], conn: Connection, task_id: bytes
    ) -> None:
        await asyncio.gather(*acks, return_exceptions=True)
        if not conn.is_closed():
            conn.notify("worker.release_escrow", ReleaseEscrowRequest(task_id=task_id))

    def _h_generator_item(self, conn: Connection, req: Any, frames: list[Any]) -> None:
        st = self.generators.setdefault(req.task_id, GenState())
        if req.index < 0:  # the generator raised: an error item, then the end
            oid = object_id_for(req.task_id, len(st.refs) + 1)
            ref = ObjectRef(oid, self.address)
            self.objects.set_inline(oid, frames[0], [], is_error=True)
            st.refs.append(ref)
            st.wake()
            return
        ref = ObjectRef(req.obj.oid, self.address)
        self.objects.set_return(req.obj, frames, 0)
        st.refs.append(ref)
        st.wake()

    def generator_failed(self, task_id: bytes, error: BaseException) -> None:
        st = self.generators.setdefault(task_id, GenState())
        oid = object_id_for(task_id, len(st.refs) + 1)
        ref = ObjectRef(oid, self.address)
        self.objects.set_error(oid, error)
        st.refs.append(ref)
        st.done = True
        st.wake()

    async def next_generator_item_async(
        self, task_id: bytes, index: int
    ) -> ObjectRef | None:
        st = self.generators.setdefault(task_id, GenState())
        while len(st.refs) <= index and not st.done:
            w = self.loop.create_future()
            st.waiters.append(w)
            await w
        return st.refs[index] if index < len(st.refs) else None

    def next_generator_item(
        self, task_id: bytes, index: int, timeout: float | None
    ) -> ObjectRef | None:
        st = self.generators.get(task_id)
        if st is not None and index < len(st.refs):
            return st.refs[index]
        return self.run(self.next_generator_item_async(task_id, index), timeout)

    def generator_completed_ref(self, task_id: bytes) -> ObjectRef:
        return ObjectRef(object_id_for(task_id, 0), self.address)

    def drop_generator(self, task_id: bytes) -> None:
        self.loop_thread.call(self._drop_generator, task_id)

    def _drop_generator(self, task_id: bytes) -> None:
        st = self.generators.get(task_id)
        if st is not None and st.done:
            del self.generators[task_id]

    # -- reference counting hooks -----------------------------------------------------------
    def _on_release(self, oid: bytes, entry: RefEntry) -> None:
        if self.shutting_down:
            return
        self.loop_thread.call_lazy(self._released, oid, entry)

    def _released(self, oid: bytes, entry: RefEntry) -> None:
        if self.refs.has(oid):
            return  # re-referenced meanwhile
        self.objects.release(oid, entry.owned)
        if not entry.owned and entry.borrow_registered and entry.owner is not None:
            self.sup.spawn(self._send_unborrow(oid, entry.owner))

    async def _send_unborrow(self, oid: bytes, owner: Address) -> None:
        try:
            conn = await self.connect_to(owner)
            conn.notify(
                "worker.remove_borrower",
                BorrowRequest(oids=[oid], borrower=self.worker_id),
            )
        except RpcError:
            pass  # the owner is gone; so is the object

    def _on_borrow(self, oid: bytes, owner: Address) -> None:
        if self.loop_thread.in_loop_thread():
            self._start_borrow(oid, owner)
        else:
            self.loop_thread.call(self._start_borrow, oid, owner)

    def _start_borrow(self, oid: bytes, owner: Address) -> None:
        fut = self.loop.create_task(self._send_borrow(oid, owner))
        self._borrow_acks.append(fut)
        fut.add_done_callback(self._borrow_done)

    def _borrow_done(self, fut: asyncio.Future[Any]) -> None:
        try:
            self._borrow_acks.remove(fut)
        except ValueError:
            pass

    async def _send_borrow(self, oid: bytes, owner: Address) -> None:
        try:
            conn = await self.connect_to(owner)
            await conn.call(
                "worker.add_borrower",
                BorrowRequest(oids=[oid], borrower=self.worker_id),
            )
        except RpcError:
            pass  # owner died: get() will say OwnerDiedError

    async def wait_borrows_registered(self) -> None:
        """Wait for every borrower registration sent so far (before a task replies)."""
        if self._borrow_acks:
            await asyncio.gather(*list(self._borrow_acks), return_exceptions=True)

    # -- handlers (owner side) ---------------------------------------------------------------
    async def _h_get_object(self, conn: Connection, req: Any, bufs: Any) -> Any:
        e = self.objects.entries.get(req.oid)
        if e is None:
            return GetObjectReply(status="FREED")
        if not e.ready:
            await self.objects.resolve(req.oid, None)
        if e.data is None:
            return GetObjectReply(
                status="READY",
                obj=ReturnObject(oid=req.oid, node_id=e.node_id, size=e.size),
            )
        obj = ReturnObject(oid=req.oid, nbufs=1 + len(e.bufs), is_error=e.is_error)
        return GetObjectReply(status="READY", obj=obj), [e.data, *e.bufs]

    def _h_add_borrower(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        borrows = conn.state.setdefault("borrows", set())
        if not borrows:
            conn.on_close(self._borrower_gone)
        for oid in req.oids:
            if self.refs.add_borrower(oid, req.borrower):
                borrows.add((oid, req.borrower))
        return Empty()

    def _h_remove_borrower(self, conn: Connection, req: Any, bufs: Any) -> None:
        for oid in req.oids:
            conn.state.get("borrows", set()).discard((oid, req.borrower))
            self.refs.remove_borrower(oid, req.borrower)

    def _borrower_gone(self, conn: Connection) -> None:
        for oid, borrower in conn.state.get("borrows", ()):
            self.refs.remove_borrower(oid, borrower)

    def _h_release_escrow(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.escrow.pop(req.task_id, None)

    def _h_node_died(self, conn: Connection, req: Any, bufs: Any) -> None:
        """A node died: drop our connections to it and its workers now.

        Without this, calls to workers behind a dead link (no FIN) would wait
        for TCP timeouts; aborting fails them at once, so tasks are retried.
        """
        for worker_id, node_id in list(self._peer_nodes.items()):
            if node_id == req.node_id:
                self._peers.abort(worker_id)
        self._nodes.abort(req.node_id)

    def _h_add_location(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.objects.add_copy(req.oid, req.node_id)

    def _h_log_lines(self, conn: Connection, req: Any, bufs: Any) -> None:
        if not self.log_to_driver:
            return
        stream = sys.stderr if req.is_err else sys.stdout
        try:
            stream.write("".join(f"{req.prefix} {line}\n" for line in req.lines))
            stream.flush()
        except (OSError, ValueError):
            pass

    async def get_async(self, ref: ObjectRef) -> Any:
        """The value of ``ref``, awaited from any event loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await self.objects.get_one_async(ref)
        fut = asyncio.run_coroutine_threadsafe(
            self.objects.get_one_async(ref), self.loop
        )
        return await asyncio.wrap_future(fut)

    def is_worker_in_task(self) -> bool:
        """Whether this thread runs a normal task in a worker (which holds a CPU lease)."""
        if self.is_driver:
            return False
        from ember.runtime import task_context

        ctx = task_context.get()
        return (
            ctx is not None and not ctx.actor_id and not ctx.extra.get("resolving_args")
        )

    def notify_node(self, method: str) -> None:
        if self.node_conn is not None and not self.node_conn.is_closed():
            self.node_conn.notify(method, Empty())

    def _collect_actor(self, actor_id: bytes) -> None:
        """The last handle to an actor we created is gone: kill it (after queued calls)."""
        if self.shutting_down:
            return
        self.loop_thread.call(self._kill_collected, actor_id)

    def _kill_collected(self, actor_id: bytes) -> None:
        from ember.protocol.messages import KillActorRequest

        self.sup.spawn(
            self._kill_after_calls(
                actor_id, KillActorRequest(actor_id=actor_id, no_restart=True)
            )
        )

    async def _kill_after_calls(self, actor_id: bytes, req: Any) -> None:
        # Calls already submitted still run, as in Ray: wait until none is pending.
        st = self.actor_calls.actors.get(actor_id)
        while st is not None and (st.inflight or st.queue) and st.dead is None:
            await asyncio.sleep(0.05)
        self.actor_calls.actors.pop(actor_id, None)
        try:
            await self.control.call("control.kill_actor", req)
        except RpcError:
            pass

    # -- misc ---------------------------------------------------------------------------
    def print_warning(self, msg: str) -> None:
        try:
            print(msg, file=sys.stderr, flush=True)  # noqa: T201
        except (OSError, ValueError):
            pass
