"""A core worker's links: its loop, its node daemon, the control service, peers.

The components of the core worker (object access, submitters, borrowing,
generators) take this one collaborator instead of the whole ``CoreWorker``.
Fields set by :meth:`CoreWorker.start` (the loop, the connections, the arena,
``address``) are read at call time, as they were on the core worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from ember.common.aio import Supervisor
from ember.common.config import Config
from ember.object_store.shm import Arena
from ember.protocol.messages import SCHEMA, Address, Empty
from ember.rpc.connection import Connection, ConnectionPool
from ember.rpc.errors import RpcError
from ember.rpc.reconnecting import ReconnectingConnection
from ember.runtime.loop_thread import LoopThread

T = TypeVar("T")


class Links:
    """The loop and the connections one core worker talks through."""

    def __init__(
        self,
        worker_id: bytes,
        token: bytes,
        config: Config,
        handlers: dict[str, Any],
    ) -> None:
        self.worker_id = worker_id
        self.node_id = b""
        self.job_id = b""
        self.shutting_down = False
        self.sup = Supervisor("core-worker")

        def pool() -> ConnectionPool:
            return ConnectionPool(
                token=token,
                schema=SCHEMA,
                handlers=handlers,
                timeout_s=config.connect_timeout_s,
            )

        #: other core workers, by worker id
        self._peers = pool()
        #: other nodes' daemons, by node id
        self._nodes = pool()
        self._peer_nodes: dict[bytes, bytes] = {}
        self._node_addresses: dict[bytes, str] = {}
        #: nodes the control service said died (``worker.node_died``)
        self.dead_nodes: set[bytes] = set()
        self.loop_thread: LoopThread = None  # type: ignore[assignment]
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.node_conn: Connection = None  # type: ignore[assignment]
        self.control: ReconnectingConnection = None  # type: ignore[assignment]
        self.arena: Arena = None  # type: ignore[assignment]
        self.address: Address = None  # type: ignore[assignment]

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop from a user thread."""
        if self.loop_thread.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "blocking ember call from the event-loop thread; use await"
            )
        return self.loop_thread.run(coro, timeout)

    def cached_peer(self, address: Address) -> Connection | None:
        """The open connection to that core worker, if there is one now (no waiting)."""
        return self._peers.cached(address.worker_id)

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

    def notify_node(self, method: str) -> None:
        if self.node_conn is not None and not self.node_conn.is_closed():
            self.node_conn.notify(method, Empty())

    def h_node_died(self, conn: Connection, req: Any, bufs: Any) -> None:
        """``worker.node_died``: drop our connections to that node and its workers now.

        Without this, calls to workers behind a dead link (no FIN) would wait
        for TCP timeouts; aborting fails them at once, so tasks are retried.
        """
        self.dead_nodes.add(req.node_id)
        for worker_id, node_id in list(self._peer_nodes.items()):
            if node_id == req.node_id:
                self._peers.abort(worker_id)
        self._nodes.abort(req.node_id)
        # Once per death (the control service broadcasts it once); in a worker
        # this goes to its log file, on a driver to the user's stderr.
        if req.reason.startswith("drained by the autoscaler"):
            return  # an idle node removed on purpose (control/drain.py): nothing lost
        why = f" ({req.reason})" if req.reason else ""
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                f"A node died: {req.node_id.hex()}{why}. Its tasks are retried "
                "(max_retries), its actors restarted (max_restarts); objects stored "
                "only there are lost.\n"
            )

    def close(self) -> None:
        """Loop thread: stop background work and close every connection."""
        self.sup.close()
        self._peers.close_all()
        self._nodes.close_all()
        for c in (self.node_conn, self.control):
            if c is not None:
                c.close()
