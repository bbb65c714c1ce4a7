"""The scaling policy: from the cluster's state and demands, which nodes to add or remove.

Pure and deterministic: :func:`decide` takes a :class:`ClusterState` (the
nodes with their free amounts and idle times, nodes being started, the
resource demands nobody could grant, pending placement groups and the
``request_resources`` bundles) and returns a :class:`Decision`. The shell
(``monitor.py``) gathers the state and carries the decision out.

Theory of operation (one call)::

    1. min_workers: add nodes of each type up to its min_workers
    2. demands: pack them into the free room of the live nodes, then of the
       nodes being started; for what is left, add the node type that scores
       best (binpack.score), pack into it, repeat, within max_workers (the
       cluster's and the type's) and upscaling_speed
    3. request_resources: pack the bundles into the *totals* of every node
       (live, starting, added above); add nodes for the rest, within
       max_workers but not bound by upscaling_speed (as Ray's)
    4. idle: remove the nodes idle for their type's idle_timeout_s, longest
       idle first, unless that breaks min_workers, a node got work in step 2,
       or the request_resources bundles would no longer fit

The head node and nodes the autoscaler did not start (``node_type`` None)
count as room but are never removed. Nodes of a type no longer in the config
are never counted against a type's limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ember.autoscaler.binpack import Bin, Shape, fits_empty, pack, score
from ember.autoscaler.config import ClusterConfig

#: Ray's floor for upscaling_speed: a type may always have this many nodes starting
UPSCALING_INITIAL_NODES = 5


@dataclass(frozen=True)
class NodeState:
    """A live node as the autoscaler sees it."""

    node_id: str
    node_type: str | None
    total: Mapping[str, float]
    available: Mapping[str, float]
    #: seconds it has been idle (0: busy now)
    idle_s: float = 0.0
    is_head: bool = False


@dataclass(frozen=True)
class Demand:
    """``count`` requests of one resource shape that no node could grant yet."""

    resources: Mapping[str, float]
    count: int = 1


@dataclass(frozen=True)
class GroupDemand:
    """A placement group waiting for room: its bundles and strategy."""

    bundles: tuple[Mapping[str, float], ...]
    strategy: str = "PACK"
    key: str = ""


@dataclass(frozen=True)
class ClusterState:
    nodes: tuple[NodeState, ...] = ()
    #: per node type: nodes started by the provider that have not registered yet
    launching: Mapping[str, int] = field(default_factory=dict)
    demands: tuple[Demand, ...] = ()
    groups: tuple[GroupDemand, ...] = ()
    #: the bundles of the last request_resources() call
    requested: tuple[Mapping[str, float], ...] = ()


@dataclass(frozen=True)
class Decision:
    #: node type -> how many nodes to start
    launch: dict[str, int]
    #: ids of idle nodes to drain and stop
    terminate: list[str]
    #: shapes no node type could ever hold (or that the limits left without room)
    unplaced: list[dict[str, float]]

    @property
    def empty(self) -> bool:
        return not self.launch and not self.terminate


def demand_shapes(state: ClusterState) -> list[Shape]:
    """The demands and pending placement groups as shapes to place."""
    shapes = [Shape(dict(d.resources)) for d in state.demands for _ in range(d.count)]
    for i, g in enumerate(state.groups):
        if g.strategy == "STRICT_PACK":
            merged: dict[str, float] = {}
            for b in g.bundles:
                for k, v in b.items():
                    merged[k] = merged.get(k, 0.0) + v
            shapes.append(Shape(merged))
        else:
            spread = (g.key or f"group{i}") if g.strategy == "STRICT_SPREAD" else ""
            shapes.extend(Shape(dict(b), spread) for b in g.bundles)
    return shapes


class _Plan:
    """The counts and bins of one decide() call."""

    def __init__(self, config: ClusterConfig, state: ClusterState) -> None:
        self.config = config
        self.types = config.worker_types
        self.running = dict.fromkeys(self.types, 0)
        for n in state.nodes:
            if n.node_type in self.running and not n.is_head:
                self.running[n.node_type] += 1
        self.starting = {t: int(state.launching.get(t, 0)) for t in self.types}
        self.launch: dict[str, int] = {}
        self.workers = sum(self.running.values()) + sum(self.starting.values())

    def count(self, t: str) -> int:
        return self.running[t] + self.starting[t] + self.launch.get(t, 0)

    def room_for(self, t: str, *, speed_bound: bool) -> bool:
        if self.count(t) >= self.types[t].max_workers:
            return False
        if self.workers + sum(self.launch.values()) >= self.config.max_workers:
            return False
        if speed_bound:
            allowed = max(
                UPSCALING_INITIAL_NODES,
                math.floor(self.config.upscaling_speed * max(1, self.running[t])),
            )
            if self.starting[t] + self.launch.get(t, 0) >= allowed:
                return False
        return True

    def add(self, t: str) -> None:
        self.launch[t] = self.launch.get(t, 0) + 1

    def grow(
        self, left: list[Shape], bins: list[Bin], *, speed_bound: bool
    ) -> list[Shape]:
        """Add the best-scoring node types until ``left`` fits or nothing may be added."""
        while left:
            best: tuple[tuple[int, float, int], str] | None = None
            for t in sorted(self.types):
                if not self.room_for(t, speed_bound=speed_bound):
                    continue
                s = score(self.types[t].resources, left)
                if s[2] and (best is None or s > best[0]):
                    best = (s, t)
            if best is None:
                return left
            t = best[1]
            self.add(t)
            b = Bin(dict(self.types[t].resources), node_type=t)
            bins.append(b)
            left = pack(left, [b])
        return left

    def new_bins(self) -> list[Bin]:
        """Full-size bins for the nodes starting and to be started."""
        out = []
        for t in sorted(self.types):
            for _ in range(self.starting[t] + self.launch.get(t, 0)):
                out.append(Bin(dict(self.types[t].resources), node_type=t))
        return out


def decide(config: ClusterConfig, state: ClusterState) -> Decision:
    """What to start and what to stop now (see the module's theory of operation)."""
    plan = _Plan(config, state)
    # 1. min_workers (not bound by upscaling_speed)
    for t, nt in sorted(plan.types.items()):
        while plan.count(t) < nt.min_workers and plan.room_for(t, speed_bound=False):
            plan.add(t)
    # 2. demands and pending placement groups
    live = [Bin(dict(n.available), node_id=n.node_id) for n in state.nodes]
    bins = live + plan.new_bins()
    left = pack(demand_shapes(state), bins)
    left = plan.grow(left, bins, speed_bound=True)
    busy = {b.node_id for b in live if b.taken}
    # 3. request_resources: against the totals of every node, old and new
    requested = [Shape(dict(r)) for r in state.requested]
    if requested:
        totals = [Bin(dict(n.total), node_id=n.node_id) for n in state.nodes]
        rbins = totals + plan.new_bins()
        rleft = plan.grow(pack(requested, rbins), rbins, speed_bound=False)
        left += rleft
    # 4. idle nodes
    terminate = _idle_to_remove(plan, state, busy, requested)
    return Decision(
        launch=dict(sorted(plan.launch.items())),
        terminate=terminate,
        unplaced=[dict(s.resources) for s in left],
    )


def _idle_to_remove(
    plan: _Plan, state: ClusterState, busy: set[str], requested: list[Shape]
) -> list[str]:
    candidates = sorted(
        (
            n
            for n in state.nodes
            if not n.is_head
            and n.node_type in plan.types
            and n.node_id not in busy
            and n.idle_s > 0
            and n.idle_s >= plan.types[n.node_type].idle_timeout_s
        ),
        key=lambda n: (-n.idle_s, n.node_id),
    )
    removed: set[str] = set()
    for n in candidates:
        assert n.node_type is not None
        t = n.node_type
        kept_of_type = plan.count(t) - sum(
            1 for m in state.nodes if m.node_id in removed and m.node_type == t
        )
        if kept_of_type - 1 < plan.types[t].min_workers:
            continue
        if requested and not _still_fits(plan, state, removed | {n.node_id}, requested):
            continue
        removed.add(n.node_id)
    return [n.node_id for n in candidates if n.node_id in removed]


def _still_fits(
    plan: _Plan, state: ClusterState, removed: set[str], requested: list[Shape]
) -> bool:
    """Whether the requested bundles fit the totals of the nodes that would be left.

    Only what fits now counts: bundles no node type could hold never keep a node.
    """
    bins = [Bin(dict(n.total)) for n in state.nodes if n.node_id not in removed]
    bins += plan.new_bins()
    wanted = [
        s
        for s in requested
        if any(fits_empty(s, t.resources) for t in plan.types.values())
        or any(fits_empty(s, n.total) for n in state.nodes)
    ]
    before = [Bin(dict(n.total)) for n in state.nodes] + plan.new_bins()
    could = len(wanted) - len(pack(wanted, before))
    return len(wanted) - len(pack(wanted, bins)) >= could
