"""Reaching a cluster's control service and node daemons for the log functions.

:class:`ClusterLink` opens its own connections on a private event-loop
thread, so it works the same from a driver, a task or a command line tool:

- inside a process connected to ember (``address`` None or ``"auto"``),
  with that process's control address and token;
- otherwise with ``address`` (``HOST:PORT``, ``tcp:``/``unix:``), else
  ``EMBER_ADDRESS``/``RAY_ADDRESS``, else the cluster recorded on this
  machine, and the token from ``EMBER_AUTH_TOKEN``, that record, or the
  cluster's token file (as ``ember status`` finds them).

A node is reached on its Unix socket when that socket exists on this
machine (the embedded cluster opens no TCP port), else over TCP.

This is the small stand-in the events helper's ``util/state/client.py``
replaces once it lands (it has the same duties for the other state calls).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from types import TracebackType
from typing import Any

from ember.common import session, tls
from ember.protocol.messages import SCHEMA, Empty, GetNodesReply, NodeInfo
from ember.rpc.channel import Connection
from ember.rpc.connection import connect
from ember.runtime import current
from ember.runtime.loop_thread import LoopThread

NodeEntry = NodeInfo


def credentials(address: str | None) -> tuple[str, bytes]:
    """``(control address, token)`` of the cluster ``address`` names (see the module)."""
    cw = current.worker_or_none()
    if address in (None, "", "auto") and cw is not None:
        return str(cw.control_address), bytes(cw.token)
    addr = (
        address or os.environ.get(session.ADDRESS_ENV) or os.environ.get("RAY_ADDRESS")
    )
    rec = None
    if not addr or addr == "auto":
        rec = session.read_cluster_record()
        if rec is None or session.dead_processes(rec):
            raise ConnectionError(
                "Could not find any running ember instance: start one with "
                "'ember start --head' or ember.init(), or pass address=HOST:PORT"
            )
        addr = str(rec["control_address"])
    addr = addr.removeprefix("ember://").removeprefix("ray://")
    if not addr.startswith(("tcp:", "unix:")):
        if ":" not in addr:
            raise ValueError(f"address {addr!r} is not HOST:PORT")
        addr = f"tcp:{addr}"
    if cw is not None and addr == str(cw.control_address):
        return addr, bytes(cw.token)  # the cluster this process is connected to
    token = os.environ.get(session.TOKEN_ENV, "")
    if not token and rec is None:
        rec = session.read_cluster_record()
    if not token and rec is not None and rec.get("control_address") == addr:
        token = str(rec.get("token") or "")
    token = token or session.read_token(addr)
    if not token:
        raise ConnectionError(
            f"no token for the cluster at {addr}: set EMBER_AUTH_TOKEN or copy the "
            "head's token file (~/.ember/clusters/HOST_PORT/auth_token) here"
        )
    tls.use_for_cluster(addr)
    return addr, token.encode()


class ClusterLink:
    """Blocking calls to one cluster's control service and nodes (a context manager)."""

    def __init__(self, address: str | None, timeout: float) -> None:
        self.control_address, self._token = credentials(address)
        self.timeout = float(timeout)
        self._loop = LoopThread("ember-state")
        self._conns: dict[str, Connection] = {}
        self._nodes: list[NodeInfo] | None = None

    def __enter__(self) -> ClusterLink:
        return self

    def __exit__(
        self,
        t: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        async def close_all() -> None:
            for c in self._conns.values():
                c.close()
            await asyncio.sleep(0)

        try:
            self._loop.run(close_all(), timeout=5)
        finally:
            self._loop.stop()

    def _call(self, target: str, method: str, req: Any) -> Any:
        async def call() -> Any:
            conn = self._conns.get(target)
            if conn is None or conn.is_closed():
                conn = await connect(
                    target, token=self._token, schema=SCHEMA, timeout=self.timeout
                )
                self._conns[target] = conn
            reply, _ = await conn.call(method, req, timeout=self.timeout)
            return reply

        return self._loop.run(call(), timeout=self.timeout + 5)

    def control_call(self, method: str, req: Any) -> Any:
        return self._call(self.control_address, method, req)

    def node_call(self, node: NodeInfo, method: str, req: Any) -> Any:
        return self._call(_node_target(node), method, req)

    # -- nodes ----------------------------------------------------------------------
    def nodes(self) -> list[NodeInfo]:
        if self._nodes is None:
            reply = self.control_call("control.get_nodes", Empty())
            assert isinstance(reply, GetNodesReply)
            self._nodes = list(reply.nodes)
        return self._nodes

    def alive_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes() if n.alive]

    def node_by_id(self, node_id: bytes) -> NodeInfo:
        for n in self.nodes():
            if n.node_id == node_id:
                if not n.alive:
                    raise ValueError(
                        f"node {node_id.hex()} is dead: its logs cannot be read"
                    )
                return n
        raise ValueError(f"node {node_id.hex()} is not in the cluster")

    def find_node(self, node_id: str | None, node_ip: str | None) -> NodeInfo:
        """The alive node with that id (hex) or, failing an id, that IP (the head first)."""
        if node_id:
            try:
                raw = bytes.fromhex(node_id)
            except ValueError:
                raise ValueError(f"{node_id!r} is not a node id (hex)") from None
            return self.node_by_id(raw)
        matches = [n for n in self.alive_nodes() if n.ip == node_ip]
        if not matches:
            raise ValueError(f"no alive node has the IP {node_ip!r}")
        matches.sort(key=lambda n: not n.is_head)
        return matches[0]

    def task_worker(self, task_id: str, attempt_number: int) -> tuple[str, str]:
        """``(worker id hex, node id hex)`` of the worker that ran that task attempt."""
        try:  # the task events' state API (the events helper's module)
            state_api: Any = importlib.import_module("ember.util.state.api")
        except ImportError:
            state_api = None
        get_task = getattr(state_api, "get_task", None)
        if get_task is None:
            raise ValueError(
                "get_log(task_id=...) needs the task events of ember.util.state, which "
                "this build does not have: use actor_id or pid with node_id"
            )
        tasks = get_task(task_id, address=None, timeout=self.timeout)
        tasks = (
            tasks if isinstance(tasks, list) else [tasks] if tasks is not None else []
        )
        for t in tasks:
            attempt = getattr(t, "attempt_number", 0)
            if attempt == attempt_number and getattr(t, "worker_id", None):
                return str(t.worker_id), str(t.node_id)
        raise FileNotFoundError(
            f"Could not find log file for task attempt: {task_id}({attempt_number})"
        )


def _node_target(node: NodeInfo) -> str:
    unix = node.unix.removeprefix("unix:")
    if unix and os.path.exists(unix):
        return node.unix if node.unix.startswith("unix:") else f"unix:{unix}"
    if not node.address:
        raise ConnectionError(
            f"node {node.node_id.hex()} has no TCP address and its socket is not on "
            "this machine"
        )
    return node.address
