"""Which collectors a node daemon's and the control service's endpoints serve.

The daemons hand over the few parts each collector reads (as callables or
plain objects, never the daemon itself) and get back a started
:class:`~ember.metrics.exporter.MetricsExporter`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import Any

from ember.metrics.control_collectors import (
    ActorsCollector,
    PlacementGroupsCollector,
    TaskCounts,
    TaskCountsCollector,
)
from ember.metrics.counts import FailureCounts
from ember.metrics.exporter import MetricsExporter
from ember.metrics.families import Families
from ember.metrics.node_collectors import (
    FailureCollector,
    ObjectStoreCollector,
    SchedulingCollector,
)
from ember.metrics.processes import ComponentCollector
from ember.metrics.rpc_latency import RpcLatencyCollector
from ember.metrics.system import NodeSystemCollector
from ember.metrics.user_collector import UserMetricsCollector
from ember.metrics.user_store import UserMetricStore


def common_labels(
    session: Callable[[], str], address: str
) -> Callable[[], dict[str, str]]:
    """The labels of every sample: the cluster's session name and this node's address."""

    def labels() -> dict[str, str]:
        return {"SessionName": session(), "NodeAddress": address}

    return labels


def head_session_name(
    nodes: Callable[[], Iterable[Any]], own_session_dir: str
) -> Callable[[], str]:
    """The cluster's session name: the head node's session folder's (else this node's)."""
    own = os.path.basename(own_session_dir.rstrip("/"))

    def name() -> str:
        head = next((n for n in nodes() if n.is_head), None)
        return os.path.basename(head.session_dir.rstrip("/")) if head else own

    return name


def node_components(
    worker_pids: Callable[[], Iterable[int]], connections: Callable[[], Iterable[Any]]
) -> Callable[[], dict[str, list[int]]]:
    """This daemon, its workers, and its drivers (unix peers that are not its workers)."""
    me = os.getpid()

    def components() -> dict[str, list[int]]:
        workers = set(worker_pids())
        drivers = {c.peer_pid() for c in connections()} - workers - {0, me}
        return {"node": [me], "worker": sorted(workers), "driver": sorted(drivers)}

    return components


@dataclasses.dataclass
class NodeParts:
    """What a node daemon's collectors read."""

    node_ip: str
    is_head: bool
    session_dir: str
    #: the cluster's session name (the head's session folder's name)
    session_name: Callable[[], str]
    #: the node's ``ObjectStore`` (capacity, used, entries)
    store: Any
    #: ``Spiller.statistics``
    spill_stats: Callable[[], Any]
    #: whether the arena lives in shared memory (``/dev/shm``) or on disk
    arena_in_shm: bool
    totals: Callable[[], dict[str, float]]
    available: Callable[[], dict[str, float]]
    #: (lease requests waiting for resources, infeasible shapes seen lately)
    waiting: Callable[[], tuple[int, int]]
    failures: FailureCounts
    user_metrics: UserMetricStore
    #: component name -> pids ("node", "worker", "driver")
    components: Callable[[], dict[str, list[int]]]
    gpus: int = 0


def node_exporter(token: bytes, parts: NodeParts) -> MetricsExporter:
    """An exporter with every node collector registered (not listening yet)."""
    fam = Families(common_labels(parts.session_name, parts.node_ip))
    ex = MetricsExporter(token)
    ex.add(
        NodeSystemCollector(
            fam, parts.node_ip, parts.is_head, parts.session_dir, gpus=parts.gpus
        )
    )
    ex.add(
        ObjectStoreCollector(fam, parts.store, parts.spill_stats, parts.arena_in_shm)
    )
    ex.add(SchedulingCollector(fam, parts.totals, parts.available, parts.waiting))
    ex.add(FailureCollector(fam, parts.failures))
    ex.add(ComponentCollector(fam, parts.components))
    ex.add(RpcLatencyCollector(fam))
    ex.add(UserMetricsCollector(fam, parts.user_metrics))
    return ex


def control_exporter(
    token: bytes,
    session_name: str,
    address: str,
    actors: Callable[[], Iterable[tuple[str, str]]],
    placement_group_states: Callable[[], Iterable[str]],
    task_counts: Callable[[], TaskCounts] | None = None,
) -> MetricsExporter:
    """The control service's exporter: its tables, its own process, its RPC times."""
    fam = Families(common_labels(lambda: session_name, address))
    ex = MetricsExporter(token)
    ex.add(ActorsCollector(fam, actors))
    ex.add(PlacementGroupsCollector(fam, placement_group_states))
    if task_counts is not None:
        ex.add(TaskCountsCollector(fam, task_counts))
    pid = os.getpid()
    ex.add(ComponentCollector(fam, lambda: {"control": [pid]}))
    ex.add(RpcLatencyCollector(fam))
    return ex
