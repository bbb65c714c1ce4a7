"""The autoscaler's shell: each tick, read the cluster, run the policy, act on it.

Data flow (one tick)::

    control.get_cluster_status ---+   nodes (free, totals, store use), demands
    control.list_placement_groups +-> ClusterState --policy.decide--> Decision
    control.kv_get(resource_request)  provider.nodes() (starting ones)    |
                                                                          v
          provider.launch(type, n)  <------------------------------  launch
          control.drain_node(id) --accepted--> provider.terminate(id)  terminate
          control.kv_put(autoscaler/status)   (what it saw and did, for tests and tools)

The shell keeps two things across ticks: when each node was last seen busy
(:class:`IdleClock`; a node is busy while any resource is taken or its
store holds bytes), and nothing else: what runs comes from the control
service, what was started from the provider, so a restarted autoscaler
picks up where the last one stopped. A node the provider started that has
not registered within ``launch_timeout_s`` is stopped and forgotten.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ember.autoscaler.config import (
    KV_NAMESPACE,
    NODE_TYPE_LABEL,
    REQUEST_KEY,
    STATUS_KEY,
    ClusterConfig,
)
from ember.autoscaler.policy import (
    ClusterState,
    Decision,
    Demand,
    GroupDemand,
    NodeState,
    decide,
)
from ember.autoscaler.provider import (
    NodeProvider,
    ProviderError,
    ProviderNode,
    matches,
)
from ember.protocol.messages import (
    DrainNodeRequest,
    Empty,
    KvGetRequest,
    KvPutRequest,
    NodeInfo,
)
from ember.rpc.errors import RpcError
from ember.scheduler.resources import quantize

logger = logging.getLogger(__name__)

DEFAULT_LAUNCH_TIMEOUT_S = 120.0
EVENTS_KEPT = 50


class ControlLink(Protocol):
    """The part of a (reconnecting) connection to the control service used here."""

    async def call(self, method: str, req: Any, /) -> Any: ...


def node_busy(info: NodeInfo) -> bool:
    """Whether some resource of the node is taken or its store holds objects."""
    if info.store_used:
        return True
    return any(
        quantize(info.available.get(k, 0.0)) < quantize(v)
        for k, v in info.resources.items()
    )


class IdleClock:
    """Since when each node has been idle (pure; times from the caller)."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}

    def observe(self, node_id: str, busy: bool, now: float) -> float:
        """Record a sighting; the seconds the node has been idle (0 if busy)."""
        if busy:
            self.since.pop(node_id, None)
            return 0.0
        start = self.since.setdefault(node_id, now)
        return now - start

    def reset(self, node_id: str) -> None:
        self.since.pop(node_id, None)

    def keep_only(self, node_ids: set[str]) -> None:
        for n in [n for n in self.since if n not in node_ids]:
            del self.since[n]


@dataclass
class Report:
    """What the last tick saw and did (written to the KV as JSON)."""

    updated: float = 0.0
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    launching: dict[str, int] = field(default_factory=dict)
    unplaced: list[dict[str, float]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, wall: float, **what: Any) -> None:
        self.events.append({"time": wall, **what})
        del self.events[:-EVENTS_KEPT]

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


class Autoscaler:
    """Runs the policy against the live cluster through ``control`` and ``provider``."""

    def __init__(
        self,
        config: ClusterConfig,
        provider: NodeProvider,
        control: ControlLink,
        *,
        launch_timeout_s: float = DEFAULT_LAUNCH_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.provider = provider
        self.control = control
        self.launch_timeout_s = launch_timeout_s
        self._clock = clock
        self._wall = wall
        self.idle = IdleClock()
        self.report = Report()

    async def _call(self, method: str, req: Any) -> Any:
        reply, _ = await self.control.call(method, req)
        return reply

    async def _requested(self) -> tuple[dict[str, float], ...]:
        reply = await self._call(
            "control.kv_get", KvGetRequest(namespace=KV_NAMESPACE, key=REQUEST_KEY)
        )
        if not reply.value:
            return ()
        try:
            bundles = json.loads(reply.value).get("bundles", [])
            return tuple(
                {str(k): float(v) for k, v in b.items()} for b in bundles[:10_000]
            )
        except (ValueError, AttributeError, TypeError):
            logger.warning("ignoring a malformed resource request in the KV store")
            return ()

    async def tick(self) -> Decision:
        """One round: observe, decide, act; returns the decision."""
        status = await self._call("control.get_cluster_status", Empty())
        groups = await self._call("control.list_placement_groups", Empty())
        requested = await self._requested()
        pnodes = await asyncio.to_thread(self.provider.nodes)
        now, wall = self._clock(), self._wall()
        state, owners, stale = self._state(
            status, groups.groups, requested, pnodes, now, wall
        )
        for p in stale:
            self.report.event(
                wall, stopped=p.provider_id, why="never registered or gone"
            )
            await asyncio.to_thread(self.provider.terminate, p.provider_id)
        decision = decide(self.config, state)
        for t, n in decision.launch.items():
            ids = await asyncio.to_thread(
                self.provider.launch, self.config.node_types[t], n
            )
            self.report.event(wall, launched=t, count=n, ids=ids)
        for node_id in decision.terminate:
            await self._remove(node_id, owners.get(node_id), state, wall)
        self.report.updated = wall
        self.report.launching = dict(state.launching)
        self.report.unplaced = decision.unplaced
        await self._call(
            "control.kv_put",
            KvPutRequest(
                namespace=KV_NAMESPACE, key=STATUS_KEY, value=self.report.encode()
            ),
        )
        return decision

    async def _remove(
        self, node_id: str, owner: ProviderNode | None, state: ClusterState, wall: float
    ) -> None:
        idle_s = next((n.idle_s for n in state.nodes if n.node_id == node_id), 0.0)
        reply = await self._call(
            "control.drain_node",
            DrainNodeRequest(
                node_id=bytes.fromhex(node_id), reason=f"idle for {idle_s:.0f} s"
            ),
        )
        if not reply.accepted:
            # It got work (or holds objects) since it was seen idle: count again.
            self.idle.reset(node_id)
            self.report.event(wall, kept=node_id, why=reply.rejection)
            return
        self.report.event(wall, drained=node_id, idle_s=round(idle_s, 1))
        if owner is not None:
            await asyncio.to_thread(self.provider.terminate, owner.provider_id)

    def _state(
        self,
        status: Any,
        groups: list[Any],
        requested: tuple[dict[str, float], ...],
        pnodes: list[ProviderNode],
        now: float,
        wall: float,
    ) -> tuple[ClusterState, dict[str, ProviderNode], list[ProviderNode]]:
        infos: list[NodeInfo] = list(status.nodes)
        nodes = []
        owners: dict[str, ProviderNode] = {}
        launching: dict[str, int] = {}
        stale = []
        for p in pnodes:
            mine = [i for i in infos if matches(p, i.labels, i.hostname)]
            info = next((i for i in mine if i.alive), mine[0] if mine else None)
            if info is not None and info.alive:
                owners[info.node_id.hex()] = p
            elif info is not None or wall - p.launched_at > self.launch_timeout_s:
                stale.append(p)
            else:
                launching[p.node_type] = launching.get(p.node_type, 0) + 1
        alive = [i for i in infos if i.alive]
        self.idle.keep_only({i.node_id.hex() for i in alive})
        self.report.nodes = {}
        for i in alive:
            nid = i.node_id.hex()
            node_type = i.labels.get(NODE_TYPE_LABEL)
            if node_type not in self.config.worker_types or nid not in owners:
                node_type = None  # not ours to stop (the head, or joined by hand)
            idle_s = self.idle.observe(nid, node_busy(i), now)
            nodes.append(
                NodeState(
                    nid,
                    node_type,
                    dict(i.resources),
                    dict(i.available),
                    idle_s,
                    i.is_head,
                )
            )
            self.report.nodes[nid] = {"type": node_type, "idle_s": round(idle_s, 1)}
        demands = tuple(Demand(dict(d.resources), d.count) for d in status.demands)
        pending = tuple(
            GroupDemand(tuple(g.bundles), g.strategy, g.pg_id.hex())
            for g in groups
            if g.state == "PENDING"
        )
        state = ClusterState(tuple(nodes), launching, demands, pending, requested)
        return state, owners, stale

    async def run(self, interval_s: float, stopped: asyncio.Event) -> None:
        """Tick every ``interval_s`` until ``stopped``; a failed tick is logged."""
        while not stopped.is_set():
            try:
                await self.tick()
            except RpcError as exc:
                logger.warning("autoscaler tick failed (control service): %s", exc)
            except (ProviderError, OSError) as exc:
                logger.warning("autoscaler tick failed (node provider): %s", exc)
            try:
                await asyncio.wait_for(stopped.wait(), interval_s)
            except TimeoutError:
                pass
