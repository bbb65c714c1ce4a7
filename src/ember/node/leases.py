"""Worker leases: the I/O shell around this node's resource ledger.

Data flow::

    node.request_worker_lease --decide()--> infeasible | unschedulable | spill back
        | local: PendingLease (waits for resources and an idle worker)
        v
    dispatch(): ledger.fits -> pool.take_idle (or spawn one) -> grant:
        ledger.acquire -> LeaseReply(lease id, worker, GPU ids)
    node.return_worker_lease / worker exit / holder's connection closes
        -> ledger.release (the holder gone: its task worker is killed)
    node.worker_blocked / node.worker_unblocked -> ledger.lend / ledger.unlend
    node.get_worker_death(lease id) -> why that lease's worker died (its holder
        asks after losing the worker: OOM kill, signal, exit code)

All amounts live in the ledger (``scheduler/ledger.py``); this module only
decides when to call it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ember.common.aio import Supervisor
from ember.exceptions import RuntimeEnvSetupError
from ember.node.cluster_view import ClusterView
from ember.node.memory_monitor import Candidate
from ember.node.worker_pool import WorkerHandle, WorkerPool
from ember.protocol.messages import LeaseReply, LeaseRequest, WorkerDeathReply
from ember.rpc.connection import Connection
from ember.scheduler.ledger import ResourceLedger
from ember.scheduler.policy import Decision, decide
from ember.scheduler.resources import fits

logger = logging.getLogger(__name__)

#: how long an infeasible request is reported after it was last seen (submitters retry)
INFEASIBLE_REPORT_S = 5.0
#: death causes kept for holders that ask late (oldest dropped first)
DEATHS_KEPT = 1024


def spill_reply(
    decision: Decision, req: Any, ledger: Any, cluster: Any
) -> LeaseReply | None:
    """The spillback answer to a lease request ``decision`` sends elsewhere (a full
    node also passes a plain spilled request on to one with room), or None: it
    queues here."""
    if decision.kind == "local" and spill_on(req) and not ledger.fits(req.resources):
        other = cluster.node_with_room(req.resources)
        if other is not None:
            decision = Decision("spill", other)
    if decision.kind != "spill":
        return None
    target = cluster.count_spilled(decision.node_id, req.resources)
    return LeaseReply(spillback=target.address, spillback_node=target.node_id)


def spill_on(req: LeaseRequest) -> bool:
    """Whether a spilled request that finds this node full goes on to one with room.

    Only a plain request (DEFAULT strategy, no locality hint): the others were
    sent here for this node's sake.  Issue 17: spill-backs decided on stale
    views piled requests onto full nodes, where they waited while other nodes
    had room (40 held tasks on 20 nodes of 5 slots: 8 never ran).
    """
    strategy = req.strategy or {}
    return (
        bool(req.spilled)
        and strategy.get("type", "DEFAULT") == "DEFAULT"
        and not strategy.get("locality")
        and not req.for_actor
    )


class PendingLease:
    """A lease request waiting for resources or a worker."""

    def __init__(self, req: Any, conn: Connection) -> None:
        self.req = req
        self.conn = conn
        self.fut: asyncio.Future[LeaseReply] = (
            asyncio.get_running_loop().create_future()
        )


@dataclasses.dataclass
class _Granted:
    worker: WorkerHandle
    holder: Connection
    req: Any
    #: loop time of the grant (the memory monitor kills the newest first)
    granted_at: float = 0.0


class LeaseManager:
    """Pending and granted leases of one node."""

    def __init__(
        self,
        ledger: ResourceLedger,
        pool: WorkerPool,
        cluster: ClusterView,
        sup: Supervisor,
        on_change: Callable[[], None],
    ) -> None:
        self._ledger = ledger
        self._pool = pool
        self._cluster = cluster
        self._sup = sup
        #: called after every change of the ledger (the daemon sends a heartbeat)
        self._on_change = on_change
        self.pending: list[PendingLease] = []
        self.granted: dict[int, _Granted] = {}
        self._rotation = 0
        #: requests no node could ever hold, reported to the control service (ember status)
        self.infeasible: dict[str, tuple[dict[str, float], float]] = {}
        #: lease id -> how its worker died, for node.get_worker_death
        self.deaths: OrderedDict[int, WorkerDeathReply] = OrderedDict()

    def handlers(self) -> dict[str, Any]:
        return {
            "node.request_worker_lease": self.h_request,
            "node.return_worker_lease": self.h_return,
            "node.worker_blocked": self.h_worker_blocked,
            "node.worker_unblocked": self.h_worker_unblocked,
            "node.get_worker_death": self.h_worker_death,
        }

    # -- requests -------------------------------------------------------------------
    async def h_request(self, conn: Connection, req: Any, bufs: Any) -> LeaseReply:
        decision = decide(
            req.resources,
            req.strategy,
            self._cluster.node_id,
            self._cluster.views(self._ledger),
            req.spilled,
            self._rotation,
        )
        if req.strategy.get("type") == "SPREAD" and not req.spilled:
            self._rotation += 1
        if decision.kind == "infeasible":
            key = repr(sorted(req.resources.items()))
            self.infeasible[key] = (dict(req.resources), time.monotonic())
            return LeaseReply(infeasible=True)
        if decision.kind == "unschedulable":
            return LeaseReply(unschedulable=decision.reason)
        spilled = spill_reply(decision, req, self._ledger, self._cluster)
        if spilled is not None:
            return spilled
        p = PendingLease(req, conn)
        self.pending.append(p)
        self.dispatch()
        return await p.fut

    def dispatch(self) -> None:
        """Grant what the ledger and the idle workers allow, in arrival order."""
        still: list[PendingLease] = []
        for p in self.pending:
            if p.fut.done() or p.conn.is_closed():
                continue
            if not self._ledger.fits(p.req.resources):
                still.append(p)
                continue
            h = self._pool.take_idle(p.req.env_key)
            if h is None:
                still.append(p)
                waiting = sum(1 for q in still if q.req.env_key == p.req.env_key)
                if self._pool.starting.get(p.req.env_key, 0) < waiting:
                    self._sup.spawn(self._spawn_for(p.req), name="spawn")
                continue
            self._grant(p, h)
        self.pending = still

    async def _spawn_for(self, req: LeaseRequest) -> None:
        """Start a worker for ``req``'s env; a failed env setup answers its requests."""
        try:
            await self._pool.spawn(req.env_key, req.env_vars, req.runtime_env)
        except RuntimeEnvSetupError as exc:
            message = exc.error_message or str(exc)
            logger.warning("runtime env setup failed: %s", message)
            still: list[PendingLease] = []
            for p in self.pending:
                if p.req.env_key == req.env_key and not p.fut.done():
                    p.fut.set_result(LeaseReply(runtime_env_error=message))
                else:
                    still.append(p)
            self.pending = still

    def _grant(self, p: PendingLease, h: WorkerHandle) -> None:
        req = p.req
        lease = self._ledger.acquire(req.resources)
        h.state = "actor" if req.for_actor else "leased"
        h.lease_id = lease.lease_id
        self.granted[lease.lease_id] = _Granted(
            h, p.conn, req, asyncio.get_running_loop().time()
        )
        if not req.for_actor:
            p.conn.state.setdefault("leases", set()).add(lease.lease_id)
            if len(p.conn.state["leases"]) == 1:
                p.conn.on_close(self._holder_gone)
        self._on_change()
        p.fut.set_result(
            LeaseReply(
                lease_id=lease.lease_id,
                worker=h.address,
                pid=h.pid,
                assigned={"GPU": list(lease.gpu_ids)} if lease.gpu_ids else {},
            )
        )

    def bundles_removed(self, lease_ids: list[int]) -> None:
        """A placement group's bundles are gone from this node.

        The workers of ``lease_ids`` (which drew on them) are stopped, and the
        pending requests that this node can now never hold are answered
        infeasible, so their submitters learn that the group was removed.
        """
        for lease_id in lease_ids:
            g = self.granted.get(lease_id)
            if g is not None:
                self._pool.kill(g.worker, "its placement group was removed")
        totals = self._ledger.totals()
        still: list[PendingLease] = []
        for p in self.pending:
            if not p.fut.done() and not fits(p.req.resources, totals):
                p.fut.set_result(LeaseReply(infeasible=True))
            else:
                still.append(p)
        self.pending = still

    def resources_changed(self) -> None:
        """The ledger changed outside a lease (bundles): report it, grant what fits."""
        self._on_change()
        self.dispatch()

    # -- ends of leases ---------------------------------------------------------------
    def h_return(self, conn: Connection, req: Any, bufs: Any) -> None:
        h = self._release(req.lease_id)
        if h is None:
            return
        conn.state.get("leases", set()).discard(req.lease_id)
        if req.worker_dead:
            self._pool.kill(h, "its lease holder saw it fail")
        elif h.state == "leased":
            self._pool.make_idle(h)
        self.dispatch()

    def _release(self, lease_id: int) -> WorkerHandle | None:
        g = self.granted.pop(lease_id, None)
        if g is None:
            return None
        self._ledger.release(lease_id)
        self._on_change()
        return g.worker

    def _holder_gone(self, conn: Connection) -> None:
        for lease_id in list(conn.state.get("leases", ())):
            h = self._release(lease_id)
            if h is not None and h.state == "leased":
                # The owner of whatever runs there is gone: stop the orphan work.
                self._pool.kill(h, "its lease holder disconnected")
        self.dispatch()

    def worker_exited(self, h: WorkerHandle) -> None:
        """A worker process ended: the lease it served (if any) ends with it."""
        if h.lease_id:
            self.deaths[h.lease_id] = self._pool.death_of(h)
            while len(self.deaths) > DEATHS_KEPT:
                self.deaths.popitem(last=False)
        g = self.granted.get(h.lease_id) if h.lease_id else None
        if g is not None and g.worker is h:
            self._release(h.lease_id)

    # -- death causes and the memory monitor's choice ---------------------------------
    async def h_worker_death(
        self, conn: Connection, req: Any, bufs: Any
    ) -> WorkerDeathReply:
        """Why the worker of ``req.lease_id`` died; waits (bounded) for it to be reaped."""
        known = self.deaths.get(req.lease_id)
        if known is not None:
            return known
        g = self.granted.get(req.lease_id)
        if g is None:
            return WorkerDeathReply(message="its node knows nothing of its lease")
        h = g.worker
        try:
            await asyncio.wait_for(asyncio.shield(h.exited), max(0.0, req.timeout_s))
        except TimeoutError:
            # Still running: only the holder's connection to it broke.
            return WorkerDeathReply(message="its process was still running")
        return self._pool.death_of(h)

    def kill_candidates(self) -> list[Candidate]:
        """The workers the memory monitor may kill: those serving granted leases."""
        out = []
        for g in self.granted.values():
            h = g.worker
            if h.state not in ("leased", "actor") or h.death is not None:
                continue
            out.append(
                Candidate(
                    pid=h.pid,
                    retriable=bool(g.req.retriable),
                    owner=g.req.owner_id or id(g.holder),
                    granted_at=g.granted_at,
                    name=g.req.name,
                    for_actor=bool(g.req.for_actor),
                )
            )
        return out

    def kill_for_memory(self, victim: Candidate, death: WorkerDeathReply) -> bool:
        """Kill ``victim`` if it still serves a lease; its holder will hear ``death``."""
        h = self._pool.by_pid.get(victim.pid)
        if h is None or h.state not in ("leased", "actor") or h.death is not None:
            return False
        self._pool.kill(h, "the node is out of memory", death)
        return True

    # -- blocked workers lend their CPU -------------------------------------------------
    def _lease_of(self, conn: Connection) -> int:
        """The task lease the worker on ``conn`` serves, or 0."""
        h = self._pool.by_pid.get(conn.state.get("worker_pid", -1))
        if h is None or h.state != "leased" or h.lease_id not in self.granted:
            return 0
        return h.lease_id

    def h_worker_blocked(self, conn: Connection, req: Any, bufs: Any) -> None:
        """A worker's task waits in get(): lend its CPU to others (avoids deadlock)."""
        if self._ledger.lend(self._lease_of(conn)):
            self.resources_changed()

    def h_worker_unblocked(self, conn: Connection, req: Any, bufs: Any) -> None:
        if self._ledger.unlend(self._lease_of(conn)):
            self._on_change()

    # -- reports ------------------------------------------------------------------------
    def pending_demands(self) -> list[dict[str, float]]:
        return [dict(p.req.resources) for p in self.pending[:100]]

    def recent_infeasible(self) -> list[dict[str, float]]:
        """Infeasible requests seen in the last few seconds (submitters retry each second)."""
        now = time.monotonic()
        for key in [
            k for k, (_, t) in self.infeasible.items() if now - t > INFEASIBLE_REPORT_S
        ]:
            del self.infeasible[key]
        # One that some node could hold now is stale (its submitter retries within
        # a second and is spilled there): reporting it would start a node for nothing.
        totals = [
            v.total for v in self._cluster.views(self._ledger).values() if v.alive
        ]
        return [
            r
            for r, _ in self.infeasible.values()
            if not any(fits(r, t) for t in totals)
        ][:100]
