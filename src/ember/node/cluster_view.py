"""This node's view of the other nodes, as the control service last reported them.

Refreshed every heartbeat and at once on ``node.cluster_changed``.  Lease
placement reads it (``views``) and counts what it spills to a node until the
next refresh (``count_spilled``); object transfers look peers up in it.

A refresh asks for the records changed since the version it last saw
(``GetNodesRequest.since``); the control service answers with those only, or
with every record when the view is of another numbering (its first refresh,
a restarted control service).  So an idle cluster's refreshes carry nothing
and cost O(1), not O(N) (issue 17).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ember.common.aio import Supervisor
from ember.protocol.messages import GetNodesRequest, NodeInfo
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
        #: the version and numbering of the control service's view last seen
        self.version = 0
        self.view_id = b""
        #: the records count_spilled replaced, as the control service sent them
        self._reported: dict[bytes, NodeInfo] = {}
        #: how many node records the refreshes received (the cost of keeping up)
        self.records_received = 0

    def handlers(self) -> dict[str, Any]:
        return {"node.cluster_changed": self.h_cluster_changed}

    def get(self, node_id: bytes) -> NodeInfo | None:
        return self.nodes.get(node_id)

    async def refresh(self) -> None:
        if self.control is None or self.control.is_closed():
            return
        reply, _ = await self.control.call(
            "control.get_nodes",
            GetNodesRequest(since=self.version, view_id=self.view_id),
        )
        self.records_received += len(reply.nodes)
        if reply.delta:
            # what was spilled to a node counts until the next refresh, as before
            self.nodes.update(self._reported)
            self.nodes.update((n.node_id, n) for n in reply.nodes)
        else:
            self.nodes = {n.node_id: n for n in reply.nodes}
        self._reported.clear()
        self.version, self.view_id = reply.version, reply.view_id

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
            n: NodeView(n, i.resources, i.available, i.alive, i.labels)
            for n, i in self.nodes.items()
        }
        own = self.nodes.get(self.node_id)
        views[self.node_id] = NodeView(
            self.node_id,
            local.totals(),
            local.available(),
            True,
            own.labels if own is not None else {},
        )
        return views

    def node_with_room(self, request: dict[str, float]) -> bytes | None:
        """Another live node whose availability holds ``request`` now, or None.

        For a spilled request that found this node full (the view it was sent
        on was stale): it goes on to a node with room instead of queueing here
        behind leases that may never end (held tasks, actors).
        """
        for node_id, info in self.nodes.items():
            if (
                node_id != self.node_id
                and info.alive
                and info.address
                and res.fits(request, info.available)
            ):
                return node_id
        return None

    def count_spilled(self, node_id: bytes, request: dict[str, float]) -> NodeInfo:
        """Take ``request`` off ``node_id``'s availability until it reports again.

        So a burst of requests spreads over every node with room.
        """
        target = self.nodes[node_id]
        self._reported.setdefault(node_id, target)
        avail = dict(target.available)
        res.subtract(avail, request)
        counted = msgspec.structs.replace(target, available=avail)
        self.nodes[node_id] = counted
        return counted
