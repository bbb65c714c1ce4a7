"""This node's view of the other nodes, as the control service last reported them.

Refreshed every heartbeat and at once on ``node.cluster_changed``.  Lease
placement reads it (``views``) and counts what it spills to a node until that
node's next heartbeat (``count_spilled``); object transfers look peers up in it.
"""

from __future__ import annotations

from typing import Any

from ember.common.aio import Supervisor
from ember.protocol.messages import Empty, NodeInfo
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.rpc.reconnecting import ReconnectingConnection
from ember.scheduler import resources as res
from ember.scheduler.ledger import ResourceLedger
from ember.scheduler.policy import NodeView


class ClusterView:
    """The cluster's nodes by id (this node's own entry comes from its ledger)."""

    def __init__(self, node_id: bytes, sup: Supervisor) -> None:
        self.node_id = node_id
        self._sup = sup
        self.nodes: dict[bytes, NodeInfo] = {}
        #: the control service connection, once the daemon has one
        self.control: ReconnectingConnection | Connection | None = None

    def handlers(self) -> dict[str, Any]:
        return {"node.cluster_changed": self.h_cluster_changed}

    def get(self, node_id: bytes) -> NodeInfo | None:
        return self.nodes.get(node_id)

    async def refresh(self) -> None:
        if self.control is None or self.control.is_closed():
            return
        reply, _ = await self.control.call("control.get_nodes", Empty())
        self.nodes = {n.node_id: n for n in reply.nodes}

    def h_cluster_changed(self, conn: Connection, req: Any, bufs: Any) -> None:
        self._sup.spawn(self._refresh_quietly(), name="refresh-cluster")

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except RpcError:
            pass

    def views(self, local: ResourceLedger) -> dict[bytes, NodeView]:
        """What the scheduler policy sees: every node, this one from ``local``."""
        views = {
            n: NodeView(n, i.resources, i.available, i.alive)
            for n, i in self.nodes.items()
        }
        views[self.node_id] = NodeView(
            self.node_id, local.totals(), local.available(), True
        )
        return views

    def count_spilled(self, node_id: bytes, request: dict[str, float]) -> NodeInfo:
        """Take ``request`` off ``node_id``'s availability until it reports again.

        So a burst of requests spreads over every node with room.
        """
        target = self.nodes[node_id]
        avail = dict(target.available)
        res.subtract(avail, request)
        target.available = avail
        return target
