"""The dashboard's connections to the cluster: the control service and the node daemons.

Theory of operation.  One authenticated connection per peer is opened on
first use and kept (on the dashboard's own event loop, so no request blocks
it); a connection that closed (the control service restarted, a node died)
is dropped, and the next call opens a new one, once.  So the dashboard
needs no restart of its own when the control service comes back, and a
call made while it is away fails at once with :class:`ClusterUnavailable`
(the API answers 503), instead of hanging a page.

A node is reached through its unix socket when that socket is on this
machine (the head's nodes), else through its TCP address.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ember.protocol.messages import SCHEMA, Empty, GetNodesReply, NodeInfo
from ember.rpc.connection import Connection, connect
from ember.rpc.errors import ConnectionLostError, RemoteError, RpcError

#: seconds one call (and one connection attempt) may take
CALL_TIMEOUT_S = 10.0


class ClusterUnavailable(Exception):
    """A peer of the cluster could not be reached or did not answer."""


class ClusterLinks:
    """Cached connections to ``control_address`` and the nodes (see the module)."""

    def __init__(self, control_address: str, token: str) -> None:
        self.control_address = control_address
        self._token = token.encode()
        self._conns: dict[str, Connection] = {}
        self._opening: dict[str, asyncio.Future[Connection]] = {}

    async def _connect(self, address: str) -> Connection:
        conn = self._conns.get(address)
        if conn is not None and not conn.is_closed():
            return conn
        pending = self._opening.get(address)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._opening[address] = fut
        try:
            conn = await connect(
                address, token=self._token, schema=SCHEMA, timeout=CALL_TIMEOUT_S
            )
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it
            raise
        else:
            fut.set_result(conn)
            self._conns[address] = conn
            return conn
        finally:
            del self._opening[address]

    async def call(
        self, address: str, method: str, req: Any, timeout: float = CALL_TIMEOUT_S
    ) -> Any:
        """``method`` on the peer at ``address``; its reply.

        Raises:
            ClusterUnavailable: the peer cannot be reached, or answered with an error.
        """
        for attempt in (1, 2):
            try:
                conn = await self._connect(address)
                reply, _ = await conn.call(method, req, timeout=timeout)
                return reply
            except ConnectionLostError as exc:
                self._drop(address)
                if attempt == 2:
                    raise ClusterUnavailable(
                        f"{_name(address)} is unreachable: {exc}"
                    ) from exc
            except RemoteError as exc:
                raise ClusterUnavailable(f"{_name(address)} failed: {exc}") from exc
            except (RpcError, OSError, TimeoutError) as exc:
                self._drop(address)
                raise ClusterUnavailable(
                    f"{_name(address)} is unreachable: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    def _drop(self, address: str) -> None:
        conn = self._conns.pop(address, None)
        if conn is not None:
            conn.close()

    async def control(
        self, method: str, req: Any, timeout: float = CALL_TIMEOUT_S
    ) -> Any:
        """One call to the control service."""
        return await self.call(self.control_address, method, req, timeout)

    async def node(
        self, node: NodeInfo, method: str, req: Any, timeout: float = CALL_TIMEOUT_S
    ) -> Any:
        """One call to ``node``'s daemon."""
        return await self.call(node_target(node), method, req, timeout)

    async def nodes(self) -> list[NodeInfo]:
        """Every node the control service knows, alive and dead."""
        reply = await self.control("control.get_nodes", Empty())
        assert isinstance(reply, GetNodesReply)
        return list(reply.nodes)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def node_target(node: NodeInfo) -> str:
    """How to reach ``node``'s daemon from here: its unix socket if local, else TCP."""
    unix = node.unix.removeprefix("unix:")
    if unix and os.path.exists(unix):
        return f"unix:{unix}"
    if not node.address:
        raise ClusterUnavailable(
            f"node {node.node_id.hex()} has no TCP address and its socket is not "
            "on this machine"
        )
    return node.address


def _name(address: str) -> str:
    return address.removeprefix("tcp:")
