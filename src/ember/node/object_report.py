"""One node's answer to "which object refs do your processes hold" (``node.list_objects``).

The node daemon knows its core workers: the workers it started (their
connection to it, over which they serve ``worker.*``) and the drivers that
said they are here (``node.register_driver``, sent once when a driver's core
worker starts).  A list request is fanned out over those connections, each
bounded by the request's ``timeout_s``; a process that does not answer in time
is counted, not waited for.  The reply adds the ids this node has spilled, so
the caller can mark spilled objects whichever process holds their refs.

Nothing here runs unless someone asks (``ember memory``, ``list_objects``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import (
    CoreWorkerObjects,
    ListObjectsRequest,
    NodeObjectsReply,
    RegisterDriverMessage,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError


class NodeObjectReport:
    """The drivers on this node, and the fan-out of ``node.list_objects``."""

    def __init__(
        self,
        node_id: bytes,
        worker_conns: Callable[[], list[Connection]],
        spilled_ids: Callable[[], list[bytes]],
    ) -> None:
        """``worker_conns()``: the live workers' connections to this daemon."""
        self._node_id = node_id
        self._worker_conns = worker_conns
        self._spilled_ids = spilled_ids
        #: drivers' connections to this daemon, with their pids
        self.drivers: dict[Connection, int] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "node.list_objects": self.h_list_objects,
            "node.register_driver": self.h_register_driver,
        }

    def h_register_driver(
        self, conn: Connection, req: RegisterDriverMessage, bufs: Any
    ) -> None:
        self.drivers[conn] = req.pid
        conn.on_close(self._driver_gone)

    def _driver_gone(self, conn: Connection) -> None:
        self.drivers.pop(conn, None)

    async def h_list_objects(
        self, conn: Connection, req: ListObjectsRequest, bufs: Any
    ) -> NodeObjectsReply:
        targets = [c for c in self._worker_conns() if not c.is_closed()]
        targets += [c for c in self.drivers if not c.is_closed()]
        timeout = max(req.timeout_s, 0.001)
        results = await asyncio.gather(
            *(self._ask(c, req, timeout) for c in targets), return_exceptions=True
        )
        workers: list[CoreWorkerObjects] = []
        unresponsive = 0
        for res in results:
            if isinstance(res, CoreWorkerObjects):
                workers.append(res)
            elif isinstance(res, (RpcError, OSError, TimeoutError)):
                unresponsive += 1
            elif isinstance(res, BaseException):
                raise res
        spilled = self._spilled_ids()
        return NodeObjectsReply(
            node_id=self._node_id,
            workers=workers,
            unresponsive=unresponsive,
            spilled=spilled[: max(req.limit, 0)],
        )

    @staticmethod
    async def _ask(
        conn: Connection, req: ListObjectsRequest, timeout: float
    ) -> CoreWorkerObjects:
        reply, _ = await conn.call("worker.list_objects", req, timeout=timeout)
        assert isinstance(reply, CoreWorkerObjects)
        return reply
