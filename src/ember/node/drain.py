"""Draining this node for the autoscaler: stop only if nothing would be lost.

``node.drain`` (sent by the control service for the autoscaler) is decided
here in one step on the daemon's loop, so no lease can slip in between the
check and the stop: the node accepts only when no lease is granted or
waiting (no task, no actor), no resource is reserved (placement-group
bundles) and it holds no object, in memory or spilled.
On acceptance it refuses every later lease request and stops, as on
SIGTERM; the submitters that were about to ask it go back to their own node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import DrainNodeReply

logger = logging.getLogger(__name__)


class NodeDrainingError(RuntimeError):
    """A lease asked of a node that is being drained (ask another node)."""


def busy_reason(leases: Any, ledger: Any, store_stats: Any, spill_stats: Any) -> str:
    """Why this node is not idle, or "" (leases, reserved resources, objects)."""
    if leases.granted:
        return f"{len(leases.granted)} lease(s) granted (tasks or actors run here)"
    if leases.pending:
        return f"{len(leases.pending)} lease request(s) wait here"
    free, totals = ledger.available(), ledger.totals()
    taken = sorted(k for k, v in totals.items() if free.get(k, 0.0) < v)
    if taken:
        return (
            f"resources are reserved here ({', '.join(taken)}: placement-group bundles)"
        )
    if store_stats.objects:
        return f"it holds {store_stats.objects} object(s)"
    if spill_stats.files or spill_stats.bytes_on_disk:
        return "it holds spilled objects"
    return ""


def drain_node(
    req: Any,
    leases: Any,
    ledger: Any,
    store_stats: Any,
    spill_stats: Any,
    handlers: dict[str, Any],
    stop: Callable[[], None],
) -> DrainNodeReply:
    """Accept and start stopping, or refuse naming why (see the module doc)."""
    why = busy_reason(leases, ledger, store_stats, spill_stats)
    if why:
        return DrainNodeReply(accepted=False, rejection=why)

    def refuse(conn: Any, r: Any, bufs: Any) -> None:
        raise NodeDrainingError("this node is being drained by the autoscaler")

    handlers["node.request_worker_lease"] = refuse
    logger.info("drained (%s): stopping", req.reason or "no reason given")
    # after this reply is written
    asyncio.get_running_loop().call_soon(stop)
    return DrainNodeReply(accepted=True)
