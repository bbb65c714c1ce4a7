"""One simulated node daemon: the real node protocol, no processes behind it.

A :class:`SimNode` does what ``ember.node.daemon.NodeDaemon`` does towards the
control service and towards submitters, with ember's own pieces wherever they
carry the behaviour being measured:

* the control link: ``rpc.connection.connect`` with the cluster token (the
  same handshake and frame MACs), ``control.register_node`` with a
  :class:`NodeInfo`, ``control.heartbeat`` every ``heartbeat_interval_s`` and
  at once (coalesced) when the ledger changes, carrying availability and
  pending demands, exactly as the daemon's ``_send_heartbeat``;
* the cluster view: the daemon's own :class:`ClusterView`, refreshed every
  heartbeat and on ``node.cluster_changed`` (so a node simulator costs the
  control service what a real node costs it);
* leases: ``node.request_worker_lease`` decided by the real scheduler policy
  (``scheduler.policy.decide``: local, spill back, infeasible) over the real
  :class:`ResourceLedger`; a local grant names the process's
  :class:`~sim.worker.SimWorker` with a fresh worker id, so the task "runs"
  there; ``node.return_worker_lease`` and the holder's disconnection release it;
* placement groups: the daemon's own :class:`Bundles` handlers over the ledger.

What is not simulated: worker processes, the object store (``store_used`` is
0; object calls are not served), logs, metrics, drains.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from typing import Any

from ember.common.aio import Supervisor
from ember.common.ids import random_id
from ember.common.node_labels import NODE_ID_KEY
from ember.node.bundles import Bundles
from ember.node.cluster_view import ClusterView
from ember.node.leases import spill_reply
from ember.protocol.messages import (
    SCHEMA,
    Address,
    HeartbeatRequest,
    LeaseReply,
    NodeInfo,
    RegisterNodeRequest,
    WorkerDeathReply,
)
from ember.rpc.connection import Connection, Server, connect
from ember.rpc.errors import AuthenticationError, RpcError
from ember.scheduler.ledger import ResourceLedger
from ember.scheduler.policy import decide

logger = logging.getLogger(__name__)

#: the label every simulated node carries (tests and the harness select by it)
SIM_LABEL = "ember.io/simulated"
#: how long a node keeps trying to connect and register (a loaded head is slow)
START_TIMEOUT_S = 300.0


class _Pending:
    def __init__(self, req: Any, conn: Connection) -> None:
        self.req = req
        self.conn = conn
        self.fut: asyncio.Future[LeaseReply] = (
            asyncio.get_running_loop().create_future()
        )


class SimNode:
    """One simulated node: its ledger, leases, bundles and control link."""

    def __init__(
        self,
        index: int,
        control: str,
        token: bytes,
        host: str,
        resources: dict[str, float],
        worker_address: str,
        heartbeat_interval_s: float,
        labels: dict[str, str] | None = None,
        worker_handlers: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.control_address = control
        self.token = token
        self.host = host
        self.node_id = random_id()
        self.ledger = ResourceLedger(resources)
        self.worker_address = worker_address
        self.heartbeat_interval_s = heartbeat_interval_s
        self.labels = {
            **(labels or {}),
            SIM_LABEL: "1",
            NODE_ID_KEY: self.node_id.hex(),
        }
        self.sup = Supervisor(f"sim-node-{index}")
        self.cluster = ClusterView(self.node_id, self.sup)
        self.bundles = Bundles(self.ledger, self._changed)
        self.pending: list[_Pending] = []
        #: lease id -> the connection that holds it
        self.granted: dict[int, Connection] = {}
        self.leases_granted = 0
        self._rotation = 0
        self._dirty = False
        self.control: Connection | None = None
        self.address = ""
        #: worker_handlers: this node's server also plays its leases' workers (one
        #: server per node, as each real worker has its own; "" worker_address)
        self.server = Server(
            token=token,
            schema=SCHEMA,
            handlers={**(worker_handlers or {}), **self._handlers()},
        )
        self.alive = False

    def _handlers(self) -> dict[str, Any]:
        return {
            "node.request_worker_lease": self.h_request,
            "node.return_worker_lease": self.h_return,
            "node.get_worker_death": lambda c, req, b: WorkerDeathReply(
                message="a simulated node's worker does not die"
            ),
            "node.worker_blocked": lambda c, req, b: None,
            "node.worker_unblocked": lambda c, req, b: None,
            "node.owners_died": lambda c, req, b: None,
            "node.free_objects": lambda c, req, b: None,
            "node.release_objects": lambda c, req, b: None,
            **self.cluster.handlers(),
            **self.bundles.handlers(),
        }

    # -- life -------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, connect to the control service, register; then heartbeat."""
        self.address = await self.server.listen(f"tcp:{self.host}:0")
        if not self.worker_address:  # the node serves its leases' workers itself
            self.worker_address = self.address
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while True:  # as NodeDaemon._connect_control: a busy service may drop us
            try:
                self.control = await connect(
                    self.control_address,
                    token=self.token,
                    schema=SCHEMA,
                    handlers=self.server.handlers,
                    timeout=START_TIMEOUT_S,
                )
                break
            except (AuthenticationError, RpcError) as exc:
                if isinstance(exc, AuthenticationError) or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05 + random.random() * 0.2)
        await self.control.call(
            "control.register_node",
            RegisterNodeRequest(info=self.info()),
            timeout=START_TIMEOUT_S,
        )
        self.alive = True
        self.cluster.control = self.control
        self.sup.spawn(self._heartbeat_loop(), name="heartbeat")

    def info(self) -> NodeInfo:
        return NodeInfo(
            node_id=self.node_id,
            address=self.address,
            unix="",
            ip=self.host,
            resources=self.ledger.totals(),
            available=self.ledger.available(),
            labels=self.labels,
            hostname=f"{socket.gethostname()}-sim{self.index}",
            start_time=time.time(),
        )

    def kill(self) -> None:
        """Die as a crashed daemon does: every connection drops at once."""
        self.alive = False
        self.sup.close()
        if self.control is not None:
            self.control.abort()
        self.server.close()

    # -- heartbeats ---------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        # a random phase, so K nodes started together do not beat together
        await asyncio.sleep(random.random() * self.heartbeat_interval_s)
        while True:
            self._send_heartbeat()
            try:
                await self.cluster.refresh()
            except RpcError:
                pass
            await asyncio.sleep(self.heartbeat_interval_s)

    def _changed(self) -> None:
        if not self._dirty:
            self._dirty = True
            asyncio.get_running_loop().call_soon(self._send_heartbeat)
        self._dispatch()

    def _send_heartbeat(self) -> None:
        self._dirty = False
        if self.control is None or self.control.is_closed():
            return
        try:
            self.control.notify(
                "control.heartbeat",
                HeartbeatRequest(
                    node_id=self.node_id,
                    available=self.ledger.available(),
                    pending_demands=[dict(p.req.resources) for p in self.pending[:100]],
                    total=self.ledger.totals(),
                ),
            )
        except RpcError:
            pass

    # -- leases -------------------------------------------------------------------------
    async def h_request(self, conn: Connection, req: Any, bufs: Any) -> LeaseReply:
        decision = decide(
            req.resources,
            req.strategy,
            self.node_id,
            self.cluster.views(self.ledger),
            req.spilled,
            self._rotation,
        )
        if req.strategy.get("type") == "SPREAD" and not req.spilled:
            self._rotation += 1
        if decision.kind == "infeasible":
            return LeaseReply(infeasible=True)
        if decision.kind == "unschedulable":
            return LeaseReply(unschedulable=decision.reason)
        spilled = spill_reply(
            decision, req, self.ledger, self.cluster
        )  # as a node does
        if spilled is not None:
            return spilled
        p = _Pending(req, conn)
        self.pending.append(p)
        self._dispatch()
        return await p.fut

    def _dispatch(self) -> None:
        still = []
        for p in self.pending:
            if p.fut.done() or p.conn.is_closed():
                continue
            if not self.ledger.fits(p.req.resources):
                still.append(p)
                continue
            lease = self.ledger.acquire(p.req.resources)
            self.granted[lease.lease_id] = p.conn
            self.leases_granted += 1
            if not p.req.for_actor:
                held = p.conn.state.setdefault("sim_leases", set())
                if not held:
                    p.conn.on_close(self._holder_gone)
                held.add(lease.lease_id)
            p.fut.set_result(
                LeaseReply(
                    lease_id=lease.lease_id,
                    worker=Address(
                        worker_id=random_id(),
                        node_id=self.node_id,
                        tcp=self.worker_address,
                    ),
                    pid=0,
                )
            )
            self._changed_soon()
        self.pending = still

    def _changed_soon(self) -> None:
        if not self._dirty:
            self._dirty = True
            asyncio.get_running_loop().call_soon(self._send_heartbeat)

    def h_return(self, conn: Connection, req: Any, bufs: Any) -> None:
        if self.granted.pop(req.lease_id, None) is None:
            return
        conn.state.get("sim_leases", set()).discard(req.lease_id)
        self.ledger.release(req.lease_id)
        self._changed()

    def _holder_gone(self, conn: Connection) -> None:
        # a submitter holds one connection per node it leases from
        for lease_id in list(conn.state.get("sim_leases", ())):
            if self.granted.pop(lease_id, None) is not None:
                self.ledger.release(lease_id)
        self._changed()

    def statistics(self) -> dict[str, Any]:
        return {
            "leases": len(self.granted),
            "pending": len(self.pending),
            "granted_total": self.leases_granted,
        }
