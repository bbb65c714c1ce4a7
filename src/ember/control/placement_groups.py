"""Placement groups: reserve bundles of resources atomically across nodes.

Theory of operation (per group)::

    PENDING --placed, every node prepared, then committed--> CREATED
       |  \\--a prepare failed: cancel the prepared ones, retry later
       +--remove--> REMOVED  (bundles cancelled on their nodes)

Removing a group (any state) first marks it REMOVED and calls ``on_removed``
(the actor directory kills the group's actors), then cancels its bundles: the
nodes stop the workers that drew on them and answer the lease requests still
waiting for them as infeasible. A submitter told "infeasible" for a group asks
for the group's state and fails the task with ``TaskPlacementGroupRemoved``.

Two-phase reservation: the control service picks a node per bundle
(scheduler/placement.py), asks each node to *prepare* (reserve) its bundles;
only when all succeeded does it *commit* them, which makes each node expose
the bundle as resources (``CPU_group_<i>_<pg>``, ...) that tasks and actors
scheduled into the group ask for.  A prepare that fails (the cluster view was
stale) rolls back every prepared bundle, so no partial group ever exists.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Protocol

import msgspec

from ember.common.aio import Supervisor
from ember.control.storage import Storage
from ember.protocol.messages import (
    PlacementGroupInfo,
    PlacementGroupRequest,
    PrepareBundlesRequest,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.scheduler.placement import feasible_ever, place_bundles
from ember.scheduler.policy import NodeView

logger = logging.getLogger(__name__)
RETRY_INTERVAL_S = 0.2


class NodeViews(Protocol):
    """What the placement groups see of the cluster's nodes."""

    def views(self) -> dict[bytes, NodeView]:
        """The live nodes as the scheduler sees them."""
        ...

    def conn(self, node_id: bytes) -> Connection | None:
        """The live node's connection, or None."""
        ...


class PlacementGroups:
    """Every placement group of the cluster."""

    def __init__(
        self,
        nodes: NodeViews,
        on_removed: Callable[[bytes], None] | None = None,
        storage: Storage | None = None,
    ) -> None:
        self._nodes = nodes
        #: where groups are kept for a restarted control service (table ``pgs``)
        self._storage = storage
        #: called with a group's id when it is removed, before its bundles are cancelled
        self._on_removed = on_removed
        self.groups: dict[bytes, PlacementGroupInfo] = {}
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._sup = Supervisor("placement-groups")
        self._warned: set[bytes] = set()

    def create(self, info: PlacementGroupInfo) -> None:
        _check_request(info)
        if info.pg_id in self.groups:
            return  # sent again after this service restarted
        if info.name and self.by_name(info.name, info.namespace) is not None:
            raise ValueError(
                f"A placement group named {info.name!r} already exists in namespace "
                f"{info.namespace!r}; pick another name or remove it first."
            )
        info.state = "PENDING"
        self.groups[info.pg_id] = info
        self._store(info)
        self._sup.spawn(self._schedule(info), name="pg-schedule")

    def load(self) -> None:
        """Reload the groups a previous control service stored.

        A CREATED group's bundles stay reserved on its nodes across the restart;
        a PENDING one is scheduled again.
        """
        if self._storage is None:
            return
        for _, raw in self._storage.scan("pgs"):
            g = msgspec.msgpack.decode(raw, type=PlacementGroupInfo)
            self.groups[g.pg_id] = g
            if g.state == "PENDING":
                self._sup.spawn(self._schedule(g), name="pg-schedule")

    def _store(self, g: PlacementGroupInfo) -> None:
        if self._storage is None:
            return
        if g.state == "REMOVED":
            self._storage.delete("pgs", g.pg_id)
        else:
            self._storage.put("pgs", g.pg_id, msgspec.msgpack.encode(g))

    def by_name(self, name: str, namespace: str) -> PlacementGroupInfo | None:
        for g in self.groups.values():
            if g.name == name and g.namespace == namespace and g.state != "REMOVED":
                return g
        return None

    async def _schedule(self, g: PlacementGroupInfo) -> None:
        while g.state == "PENDING":
            views = self._nodes.views()
            placement = place_bundles(g.bundles, g.strategy, views)
            if placement is None:
                if (
                    not feasible_ever(g.bundles, g.strategy, views)
                    and g.pg_id not in self._warned
                ):
                    self._warned.add(g.pg_id)
                    logger.warning(
                        "placement group %s (%s, %s) does not fit the cluster; it "
                        "stays pending until nodes join",
                        g.pg_id.hex(),
                        g.strategy,
                        g.bundles,
                    )
                await asyncio.sleep(RETRY_INTERVAL_S)
                continue
            if await self._reserve(g, placement):
                return
            await asyncio.sleep(RETRY_INTERVAL_S)

    async def _reserve(self, g: PlacementGroupInfo, placement: list[bytes]) -> bool:
        by_node: dict[bytes, list[int]] = {}
        for i, n in enumerate(placement):
            by_node.setdefault(n, []).append(i)
        prepared: list[bytes] = []
        ok = True
        for node_id, idx in by_node.items():
            conn = self._nodes.conn(node_id)
            try:
                if conn is None:
                    raise RpcError("node gone")
                reply, _ = await conn.call(
                    "node.prepare_bundles",
                    PrepareBundlesRequest(
                        pg_id=g.pg_id, indexes=idx, bundles=[g.bundles[i] for i in idx]
                    ),
                )
            except RpcError:
                ok = False
                break
            if not reply.ok:
                ok = False
                break
            prepared.append(node_id)
        if not ok or g.state != "PENDING":
            await self._cancel_on(g.pg_id, prepared)
            return g.state != "PENDING"
        for node_id in prepared:
            conn = self._nodes.conn(node_id)
            if conn is not None:
                await conn.call(
                    "node.commit_bundles", PlacementGroupRequest(pg_id=g.pg_id)
                )
        g.bundle_nodes = placement
        g.state = "CREATED"
        self._store(g)
        self._wake(g.pg_id)
        return True

    async def _cancel_on(self, pg_id: bytes, nodes: list[bytes]) -> None:
        for node_id in nodes:
            conn = self._nodes.conn(node_id)
            if conn is not None and not conn.is_closed():
                try:
                    await conn.call(
                        "node.cancel_bundles", PlacementGroupRequest(pg_id=pg_id)
                    )
                except RpcError:
                    pass

    async def remove(self, pg_id: bytes) -> None:
        if not pg_id:
            raise ValueError("remove_placement_group needs a placement group id")
        g = self.groups.get(pg_id)
        if g is None or g.state == "REMOVED":
            return
        was_created = g.state == "CREATED"
        g.state = "REMOVED"
        self._store(g)
        if self._on_removed is not None:
            self._on_removed(pg_id)
        if was_created:
            await self._cancel_on(pg_id, sorted(set(g.bundle_nodes)))
        self._wake(pg_id)

    async def wait(self, pg_id: bytes, timeout_s: float) -> PlacementGroupInfo | None:
        g = self.groups.get(pg_id)
        if g is None:
            return None
        if g.state == "PENDING":
            fut = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(pg_id, []).append(fut)
            try:
                await asyncio.wait_for(fut, timeout_s if timeout_s > 0 else None)
            except TimeoutError:
                pass
        return g

    def _wake(self, pg_id: bytes) -> None:
        for fut in self._waiters.pop(pg_id, []):
            if not fut.done():
                fut.set_result(None)

    def on_job_finished(self, job_id: bytes) -> None:
        for g in list(self.groups.values()):
            if g.job_id == job_id and not g.detached and g.state != "REMOVED":
                self._sup.spawn(self.remove(g.pg_id), name="pg-remove")

    def close(self) -> None:
        self._sup.close()


def _check_request(info: PlacementGroupInfo) -> None:
    """Refuse a group no driver could have asked for (the API checks users' input)."""
    if not info.pg_id:
        raise ValueError("a placement group needs a non-empty id")
    if not info.bundles:
        raise ValueError("a placement group needs at least one bundle")
    for b in info.bundles:
        for k, v in b.items():
            if not k or not math.isfinite(v) or v < 0:
                raise ValueError(
                    f"bundle resource {k!r}: {v!r} is not a finite amount >= 0"
                )
