"""The core worker: the runtime every driver and worker process carries.

It assembles the components and keeps the facade that ``api/`` and
``worker/`` call.  Each component takes only the collaborators it uses::

    Links (loop, node/control/peer connections, arena, address)
      |-- Borrowing (RefCounter ``refs``, borrower protocol, escrow)
      |-- MemoryStore (pure) <- StoredObjects (arena I/O) <- Objects (put/get/wait)
      |-- Generators (streams of streaming tasks)
      |-- TaskArgs (owned arguments), Returns (a task's outcome into the store)
      |-- TaskSubmitter ``tasks``, ActorSubmitter ``actor_calls``
      '-- ActorHandleCounts ``actor_handles``

It serves ``worker.*`` requests from other processes (object values for
borrowers, borrower registration, streamed generator items, log lines; in
workers, task execution via an executor that registers its own handlers).
All of its state is mutated on its loop thread (see ``objects.py`` for the
one exception).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from ember.common.clock import MonotonicClock
from ember.common.config import Config
from ember.common.ids import random_id
from ember.common.private_files import make_private
from ember.object_store.shm import Arena
from ember.protocol.messages import (
    SCHEMA,
    Address,
    Empty,
    KvPutRequest,
    RegisterJobRequest,
    SubscribeLogsRequest,
)
from ember.rpc.connection import Connection, Server, connect
from ember.rpc.errors import RpcError
from ember.rpc.reconnecting import ReconnectingConnection
from ember.runtime import current, task_context
from ember.runtime.actor_handles import ActorHandleCounts
from ember.runtime.actor_submitter import ActorSubmitter
from ember.runtime.borrowing import Borrowing
from ember.runtime.generators import Generators
from ember.runtime.lineage import LineageRecord
from ember.runtime.links import Links
from ember.runtime.loop_thread import LoopThread
from ember.runtime.memory_store import MemoryStore
from ember.runtime.object_ref import ObjectRef, RefHost
from ember.runtime.objects import Objects
from ember.runtime.returns import Returns
from ember.runtime.serialization import dumps_plain
from ember.runtime.stored import StoredObjects
from ember.runtime.submitter import TaskSubmitter
from ember.runtime.task_args import TaskArgs
from ember.runtime.task_events import TaskEventSender

T = TypeVar("T")


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
        self.handlers: dict[str, Any] = {}
        links = self.links = Links(self.worker_id, token, config, self.handlers)
        self.sup = links.sup
        self.borrowing = Borrowing(links, self._drop_object)
        self.refs = self.borrowing.refs
        self.escrow = self.borrowing.escrow
        self.store = MemoryStore(MonotonicClock(), self.refs.has)
        stored = StoredObjects(self.store, links)
        self.objects = Objects(
            self.store, stored, self.refs, links, config, self.is_worker_in_task
        )
        self.generators = Generators(self.objects, links)
        returns = Returns(self.objects, self.borrowing, self.generators)
        args = TaskArgs(self.store, self.refs, links)
        self.tasks = TaskSubmitter(
            args,
            returns,
            links,
            config,
            self.print_warning,
            recovery=self.objects.recovery,
        )
        self.actor_calls = ActorSubmitter(
            args, returns, links, recovery=self.objects.recovery
        )
        # A lost return is rebuilt by whichever submitter made it.
        self.objects.recovery.resubmit = self._resubmit
        self.actor_handles = ActorHandleCounts(self.actor_calls.collect)
        self.task_events = TaskEventSender(
            links, is_driver=is_driver, node_ip=node_ip, sup=self.sup
        )
        self.handlers.update(
            {
                "worker.get_object": self.objects.h_get_object,
                "worker.add_borrower": self.borrowing.h_add_borrower,
                "worker.remove_borrower": self.borrowing.h_remove_borrower,
                "worker.generator_item": self.generators.h_generator_item,
                "worker.release_escrow": self.borrowing.h_release_escrow,
                "worker.log_lines": self._h_log_lines,
                "worker.node_died": links.h_node_died,
                "worker.add_location": stored.h_add_location,
                "worker.drop_cached_objects": stored.h_drop_cached,
            }
        )
        # set by start(), and mirrored in ``links`` (read here on hot paths)
        self.loop_thread: LoopThread = None  # type: ignore[assignment]
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.node_conn: Connection = None  # type: ignore[assignment]
        self.control: ReconnectingConnection = None  # type: ignore[assignment]
        self.server: Server = None  # type: ignore[assignment]
        self.arena: Arena = None  # type: ignore[assignment]
        self.address: Address = None  # type: ignore[assignment]
        self.unix_path = ""

    @property
    def shutting_down(self) -> bool:
        return self.links.shutting_down

    @shutting_down.setter
    def shutting_down(self, value: bool) -> None:
        self.links.shutting_down = value

    # -- lifecycle --------------------------------------------------------------------
    def start(self, store_path: str = "", store_bytes: int = 0) -> None:
        self.loop_thread = self.links.loop_thread = LoopThread()
        self.loop = self.links.loop = self.loop_thread.loop
        host: RefHost = self  # what ObjectRef finds through ``current``
        current.set_worker(host)
        self.run(
            self._start(store_path, store_bytes),
            timeout=self.config.connect_timeout_s * 3,
        )

    async def _start(self, store_path: str, store_bytes: int) -> None:
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
        self.control = ReconnectingConnection(
            await self._connect_control(),
            self._connect_control,
            what=f"the control service at {self.control_address}",
            give_up_after_s=self.config.head_reconnect_timeout_s,
            on_connected=self._reattach,
        )
        if self.is_driver:
            stats, _ = await self.node_conn.call("node.get_stats", Empty())
            self.node_id = stats.node_id
            store_path, store_bytes = stats.store_path, stats.store_bytes
        self.address = Address(
            worker_id=self.worker_id, node_id=self.node_id, tcp=tcp, unix=unix
        )
        self.arena = Arena(store_path, store_bytes)
        links = self.links
        links.node_conn, links.control = self.node_conn, self.control
        links.node_id, links.address, links.arena = (
            self.node_id,
            self.address,
            self.arena,
        )
        self.task_events.start()

    async def _connect_control(self) -> Connection:
        return await connect(
            self.control_address,
            token=self.token,
            schema=SCHEMA,
            handlers=self.handlers,
            timeout=self.config.connect_timeout_s,
        )

    async def _reattach(self, conn: Connection) -> None:
        """A restarted control service: a driver tells it its job is still running."""
        if self.is_driver and self.job_id:
            await conn.call(
                "control.register_job",
                RegisterJobRequest(
                    namespace=self.namespace,
                    driver_pid=os.getpid(),
                    entrypoint=" ".join(sys.argv),
                    job_id=self.job_id,
                    worker_id=self.worker_id,
                ),
            )

    def _resubmit(self, rec: LineageRecord) -> None:
        if rec.spec is not None and rec.spec.actor_id:
            self.actor_calls.resubmit(rec)
        else:
            self.tasks.resubmit(rec)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop from a user thread."""
        return self.links.run(coro, timeout)

    async def register_job(self, namespace: str, sys_path: list[str]) -> None:
        reply, _ = await self.control.call(
            "control.register_job",
            RegisterJobRequest(
                namespace=namespace,
                driver_pid=os.getpid(),
                entrypoint=" ".join(sys.argv),
                worker_id=self.worker_id,
            ),
        )
        self.job_id = self.links.job_id = reply.job_id
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
        self.task_events.close()
        self.tasks.return_all_leases()
        if self.server is not None:
            self.server.close()
        self.links.close()
        await asyncio.sleep(0)
        try:
            os.unlink(self.unix_path)
        except FileNotFoundError:
            pass

    # -- the facade of the components ----------------------------------------------------
    async def connect_to(self, address: Address) -> Connection:
        """A cached connection to another core worker (unix socket on the same node)."""
        return await self.links.connect_to(address)

    def _drop_object(self, oid: bytes, owned: bool) -> None:
        self.objects.release(oid, owned)

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

    def ref_future(self, ref: ObjectRef) -> concurrent.futures.Future[Any]:
        """A ``concurrent.futures.Future`` of the value of ``ref``."""
        return asyncio.run_coroutine_threadsafe(
            self.objects.get_one_async(ref), self.loop
        )

    def is_worker_in_task(self) -> bool:
        """Whether this thread runs a normal task in a worker (which holds a CPU lease)."""
        if self.is_driver:
            return False
        ctx = task_context.get()
        return (
            ctx is not None and not ctx.actor_id and not ctx.extra.get("resolving_args")
        )

    def _h_log_lines(self, conn: Connection, req: Any, bufs: Any) -> None:
        if not self.log_to_driver:
            return
        stream = sys.stderr if req.is_err else sys.stdout
        try:
            stream.write("".join(f"{req.prefix} {line}\n" for line in req.lines))
            stream.flush()
        except (OSError, ValueError):
            pass

    def print_warning(self, msg: str) -> None:
        if self.shutting_down:
            return  # what shutting down does to tasks (retries, lost workers) is no news
        try:
            print(msg, file=sys.stderr, flush=True)  # noqa: T201
        except (OSError, ValueError):
            pass
