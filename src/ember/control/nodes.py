"""Node membership: the nodes, their connections, heartbeats and pending demands.

Theory of operation (per node)::

    register_node --> alive --connection closed / heartbeats missed--> dead

A node is alive while its daemon's connection is open and it sends
heartbeats; ``expired`` names the nodes silent for longer than
``node_death_timeout_s`` (a dead link sends no FIN). The control service
decides what a death means for actors, placement groups and clients; this
table only keeps the records. It is what the actor directory and the
placement groups see of the cluster (:meth:`pick`, :meth:`conn`,
:meth:`views`).

Versioned views (issue 17): every change of a node's record (registration,
death, a heartbeat whose figures differ) takes the next ``version`` and moves
the node to the end of ``_changed``, an insertion-ordered dict.  A node
daemon refreshes its cluster view every heartbeat; :meth:`changed_since`
answers it with the records changed since the version it last saw, walking
``_changed`` from its end, so an idle cluster of N nodes costs O(1) per
refresh instead of O(N) (N refreshes per heartbeat interval made it O(N^2)).
``view_id`` names this table's numbering: a view from before a restart of the
control service gets the full list.

Membership notices are coalesced: :meth:`tell_cluster_changed` sends
``node.cluster_changed`` to every node at once when none went out in the last
``CLUSTER_CHANGED_WINDOW_S``, else once at the end of that window, however
many nodes joined or left meanwhile (N registrations used to send N^2
notices, each followed by a refresh).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Callable

import msgspec

from ember.control.storage import MemoryStorage, Storage
from ember.protocol.messages import (
    Empty,
    HeartbeatRequest,
    NodeInfo,
    ResourceDemand,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.scheduler.policy import NodeView
from ember.scheduler.resources import fits

logger = logging.getLogger(__name__)

#: membership notices closer together than this go out as one
CLUSTER_CHANGED_WINDOW_S = 0.1


class NodeTable:
    """Every node the control service has seen, and the live ones' connections."""

    def __init__(self, storage: Storage | None = None) -> None:
        self._storage: Storage = storage if storage is not None else MemoryStorage()
        self.nodes: dict[bytes, NodeInfo] = {}
        #: after a restart: nodes recorded alive that have not registered again
        self.unconfirmed: set[bytes] = set()
        self.conns: dict[bytes, Connection] = {}
        #: per node: the resource shapes its lease queue could not grant yet
        self.demands: dict[bytes, list[dict[str, float]]] = {}
        #: when each live node last sent a heartbeat (monotonic seconds)
        self.last_heartbeat: dict[bytes, float] = {}
        self._rr = 0
        #: the version of the last change of any record (see changed_since)
        self.version = 0
        #: this table's numbering of versions (a restarted service starts anew)
        self.view_id = os.urandom(8)
        #: node id -> the version of its last change, oldest change first
        self._changed: dict[bytes, int] = {}
        #: the notice waiting for the end of its window, and when the last went out
        self._notice: asyncio.TimerHandle | None = None
        self._last_notice = -float("inf")
        #: how many notices went out (each to every live node)
        self.notices_sent = 0
        #: run with every notice (the service rewrites Prometheus's targets)
        self.after_notice: Callable[[], object] | None = None

    def touch(self, node_id: bytes) -> None:
        """``node_id``'s record changed: it takes the next version."""
        self.version += 1
        self._changed.pop(node_id, None)
        self._changed[node_id] = self.version

    def changed_since(self, since: int, view_id: bytes) -> tuple[list[NodeInfo], bool]:
        """The records changed after version ``since`` of ``view_id``, and whether
        that is a delta (False: every record, for a view of another numbering)."""
        if view_id != self.view_id or since > self.version or since <= 0:
            return list(self.nodes.values()), False
        out = []
        for node_id, version in reversed(self._changed.items()):
            if version <= since:
                break
            out.append(self.nodes[node_id])
        return out, True

    def register(self, info: NodeInfo, conn: Connection, now: float) -> None:
        if not info.node_id:
            raise ValueError("a node needs a non-empty node id")
        check_amounts("resources", info.resources)
        check_amounts("available", info.available)
        self.nodes[info.node_id] = info
        self.conns[info.node_id] = conn
        self.last_heartbeat[info.node_id] = now
        self.unconfirmed.discard(info.node_id)
        self.touch(info.node_id)
        self._save(info)
        logger.info("node %s registered at %s", info.node_id.hex()[:8], info.address)

    def heartbeat(self, req: HeartbeatRequest, now: float) -> None:
        check_amounts("available", req.available)
        check_amounts("total", req.total)
        for demand in (*req.pending_demands, *req.infeasible):
            check_amounts("demand", demand)
        node = self.nodes.get(req.node_id)
        self.last_heartbeat[req.node_id] = now
        if node is not None:
            if (
                node.available != req.available
                or (req.total and node.resources != req.total)
                or node.store_used != req.store_used
            ):
                self.touch(req.node_id)
            node.available = req.available
            if req.total:
                node.resources = req.total
            node.store_used = req.store_used
            # infeasible requests were refused at once, so they are not pending
            # there: report them too (pending_demands marks them infeasible)
            self.demands[req.node_id] = [*req.pending_demands, *req.infeasible]

    def lost(self, node_id: bytes, conn: Connection) -> NodeInfo | None:
        """Mark the node dead if ``conn`` is its current connection; its record."""
        if self.conns.get(node_id) is not conn:
            return None
        del self.conns[node_id]
        self.demands.pop(node_id, None)
        self.last_heartbeat.pop(node_id, None)
        node = self.nodes.get(node_id)
        if node is not None:
            node.alive = False
            node.death_reason = node.death_reason or "the node daemon disconnected"
            self.touch(node_id)
            self._save(node)
        conn.abort()
        return node

    # -- across a restart of the control service ------------------------------------
    def _save(self, info: NodeInfo) -> None:
        self._storage.put("nodes", info.node_id, msgspec.msgpack.encode(info))

    def load(self) -> None:
        """Reload the recorded nodes; those recorded alive wait to register again."""
        for node_id, raw in self._storage.scan("nodes"):
            info = msgspec.msgpack.decode(raw, type=NodeInfo)
            self.nodes[node_id] = info
            self.touch(node_id)
            if info.alive:
                self.unconfirmed.add(node_id)

    def expire_unconfirmed(self, waited_s: float) -> list[bytes]:
        """Declare dead the reloaded nodes that did not register again; their ids."""
        gone = sorted(n for n in self.unconfirmed if n not in self.conns)
        self.unconfirmed.clear()
        for node_id in gone:
            node = self.nodes[node_id]
            node.alive = False
            node.death_reason = (
                f"it did not reconnect within {waited_s:g} s after the control "
                "service restarted (it died while the head was away)"
            )
            self.touch(node_id)
            self._save(node)
            logger.warning("node %s: %s", node_id.hex()[:8], node.death_reason)
        return gone

    def expired(self, now: float, timeout_s: float) -> list[tuple[bytes, Connection]]:
        """The live nodes silent for more than ``timeout_s`` (reasons recorded)."""
        out = []
        for node_id, last in list(self.last_heartbeat.items()):
            conn = self.conns.get(node_id)
            if conn is None or now - last <= timeout_s:
                continue
            logger.warning(
                "node %s missed heartbeats for %.1fs: declaring it dead",
                node_id.hex()[:8],
                now - last,
            )
            node = self.nodes.get(node_id)
            if node is not None:
                node.death_reason = f"missed heartbeats for {now - last:.1f} s"
                self.touch(node_id)
            out.append((node_id, conn))
        return out

    def tell_cluster_changed(self) -> None:
        """Node daemons refresh their cluster view (for spill-back and SPREAD) soon.

        At once if no notice went out within the window, else at its end (one
        notice for every change meanwhile).
        """
        if self._notice is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test of the table): at once
            self._send_notice()
            return
        wait = self._last_notice + CLUSTER_CHANGED_WINDOW_S - loop.time()
        if wait <= 0:
            self._send_notice()
        else:
            self._notice = loop.call_later(wait, self._send_notice)

    def _send_notice(self) -> None:
        self._notice = None
        try:
            self._last_notice = asyncio.get_running_loop().time()
        except RuntimeError:
            pass
        self.notices_sent += 1
        if self.after_notice is not None:
            self.after_notice()
        for c in list(self.conns.values()):
            if not c.is_closed():
                try:
                    c.notify("node.cluster_changed", Empty())
                except RpcError:
                    pass

    # -- what the actor directory and placement groups use --------------------------
    def conn(self, node_id: bytes) -> Connection | None:
        """The live node's connection, or None."""
        return self.conns.get(node_id)

    def pick(self, resources: dict[str, float]) -> Connection | None:
        """A live node whose totals could hold ``resources`` (round robin)."""
        ids = [n for n, info in self.nodes.items() if info.alive and n in self.conns]
        fitting = [n for n in ids if fits(resources, self.nodes[n].resources)]
        choice = fitting or ids
        if not choice:
            return None
        self._rr += 1
        return self.conns[choice[self._rr % len(choice)]]

    def views(self) -> dict[bytes, NodeView]:
        """The live nodes as the scheduler sees them."""
        return {
            n: NodeView(n, info.resources, info.available, info.alive, info.labels)
            for n, info in self.nodes.items()
            if info.alive and n in self.conns
        }

    def pending_demands(self) -> list[ResourceDemand]:
        """The live nodes' pending resource demands, grouped by shape."""
        alive = [n for n in self.nodes.values() if n.alive]
        counts: dict[tuple[tuple[str, float], ...], int] = {}
        for node_id, shapes in self.demands.items():
            if node_id in self.conns:
                for shape in shapes:
                    key = tuple(sorted(shape.items()))
                    counts[key] = counts.get(key, 0) + 1
        return [
            ResourceDemand(
                resources=dict(key),
                count=n,
                infeasible=not any(fits(dict(key), node.resources) for node in alive),
            )
            for key, n in counts.items()
        ]


def check_amounts(what: str, amounts: dict[str, float]) -> None:
    """Refuse resource amounts no node could report (NaN, infinite, negative)."""
    for name, value in amounts.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{what}[{name!r}] = {value!r} is not a finite amount >= 0"
            )
