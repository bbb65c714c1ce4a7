"""Reaching a cluster's control service and node daemons for the log functions.

:class:`ClusterLink` is a thin layer over the state API's
:class:`~ember.util.state.client.StateClient` (which finds the cluster, the
token and TLS as every state call does): it adds calls to node daemons and
the lookups the log functions need (nodes by id or IP, the worker of a task
attempt). A node is reached on its Unix socket when that socket exists on
this machine (the embedded cluster opens no TCP port), else over TCP.

Errors a node daemon raised come back as Python's types that are also the
state API's (:class:`LogFileNotFound` is a ``FileNotFoundError`` and a
``RayStateApiException``; :class:`LogRequestError` a ``ValueError`` and a
``RayStateApiException``), so both Ray-style and plain ``except`` clauses
catch them.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from ember.protocol.messages import Empty, GetNodesReply, NodeInfo
from ember.rpc.errors import RemoteError
from ember.util.state.client import Links, StateClient
from ember.util.state.exception import RayStateApiException
from ember.util.state.tasks import get_task

NodeEntry = NodeInfo


class LogFileNotFound(RayStateApiException, FileNotFoundError):
    """No such log file (or no file for that actor, task or pid)."""


class LogRequestError(RayStateApiException, ValueError):
    """A log request the cluster refused (a name outside the logs folder, a bad id)."""


class ClusterLink:
    """Blocking calls to one cluster's control service and nodes (a context manager)."""

    def __init__(self, address: str | None, timeout: float) -> None:
        self.address = address
        self.timeout = float(timeout)
        self.client = StateClient(address)
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
        """Nothing stays open between calls (each call's connections are closed)."""

    def control_call(self, method: str, req: Any) -> Any:
        return self.client.call(method, req, self.timeout)

    def node_call(self, node: NodeInfo, method: str, req: Any) -> Any:
        """One call to ``node``'s daemon; its errors as :class:`LogFileNotFound` etc."""
        target = _node_target(node)

        async def call(links: Links) -> Any:
            conn = await links.connect(target)
            try:
                reply, _ = await conn.call(method, req, timeout=self.timeout)
            except RemoteError as exc:
                return exc  # raised below, outside the client's own error mapping
            return reply

        out = self.client.run(call, self.timeout)
        if isinstance(out, RemoteError):
            if out.is_a(FileNotFoundError):
                raise LogFileNotFound(out.remote_message)
            if out.is_a(ValueError):
                raise LogRequestError(out.remote_message)
            raise RayStateApiException(
                f"the node {node.node_id.hex()} could not answer: {out}"
            )
        return out

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
                    raise LogRequestError(
                        f"node {node_id.hex()} is dead: its logs cannot be read"
                    )
                return n
        raise LogRequestError(f"node {node_id.hex()} is not in the cluster")

    def find_node(self, node_id: str | None, node_ip: str | None) -> NodeInfo:
        """The alive node with that id (hex) or, failing an id, that IP (the head first)."""
        if node_id:
            try:
                raw = bytes.fromhex(node_id)
            except ValueError:
                raise LogRequestError(f"{node_id!r} is not a node id (hex)") from None
            return self.node_by_id(raw)
        matches = [n for n in self.alive_nodes() if n.ip == node_ip]
        if not matches:
            raise LogRequestError(f"no alive node has the IP {node_ip!r}")
        matches.sort(key=lambda n: not n.is_head)
        return matches[0]

    def task_worker(self, task_id: str, attempt_number: int) -> tuple[str, str]:
        """``(worker id hex, node id hex)`` of the worker that ran that task attempt."""
        found = get_task(task_id, address=self.address, timeout=int(self.timeout))
        rows = found if isinstance(found, list) else [] if found is None else [found]
        for t in rows:
            if (
                t["attempt_number"] == attempt_number
                and t["worker_id"]
                and t["node_id"]
            ):
                return str(t["worker_id"]), str(t["node_id"])
        raise LogFileNotFound(
            f"Could not find log file for task attempt: {task_id}({attempt_number})"
            + ("" if rows else ": the task is not known to the control service")
        )


def _node_target(node: NodeInfo) -> str:
    unix = node.unix.removeprefix("unix:")
    if unix and os.path.exists(unix):
        return f"unix:{unix}"
    if not node.address:
        raise LogRequestError(
            f"node {node.node_id.hex()} has no TCP address and its socket is not on "
            "this machine"
        )
    return node.address
