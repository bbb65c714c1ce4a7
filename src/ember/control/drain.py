"""``control.drain_node``: the autoscaler's scale-down, passed on to the node.

The node decides (``node.drain``: it accepts only when idle, see
``ember/node/drain.py``); on acceptance the node's record gets the reason as
its death reason, so ``ember status`` and ``ember.nodes()`` show why it
went away once its daemon disconnects.
"""

from __future__ import annotations

from ember.control.nodes import NodeTable
from ember.protocol.messages import DrainNodeReply, DrainNodeRequest
from ember.rpc.errors import RpcError

#: how long the node may take to answer (it decides at once)
DRAIN_CALL_TIMEOUT_S = 30.0


async def drain_node(nodes: NodeTable, req: DrainNodeRequest) -> DrainNodeReply:
    """Ask the node to stop if idle; record why it goes when it accepts."""
    conn = nodes.conn(req.node_id)
    info = nodes.nodes.get(req.node_id)
    if conn is None or info is None or not info.alive:
        return DrainNodeReply(accepted=False, rejection="the node is not alive")
    if info.is_head:
        return DrainNodeReply(
            accepted=False, rejection="the head node is never drained"
        )
    try:
        reply, _ = await conn.call("node.drain", req, timeout=DRAIN_CALL_TIMEOUT_S)
    except RpcError as exc:
        return DrainNodeReply(
            accepted=False, rejection=f"the node did not answer: {exc}"
        )
    if reply.accepted:
        info.death_reason = (
            f"drained by the autoscaler: {req.reason}"
            if req.reason
            else "drained by the autoscaler"
        )
        nodes.touch(req.node_id)
    return reply
