"""The collectors of ``ember.metrics``: Ray's names and labels, values from the parts they read.

Each collector is fed real pure parts (``ObjectStore``, ``ResourceLedger``)
or plain records and rendered with prometheus_client's own text format, then
parsed back the way Prometheus would read it.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ember.metrics import names
from ember.metrics.control_collectors import (
    ActorsCollector,
    PlacementGroupsCollector,
    TaskCountsCollector,
)
from ember.metrics.counts import FailureCounts
from ember.metrics.families import Families, cumulative_buckets
from ember.metrics.node_collectors import (
    FailureCollector,
    ObjectStoreCollector,
    SchedulingCollector,
)
from ember.metrics.processes import ComponentCollector
from ember.metrics.rpc_latency import RpcLatencyCollector
from ember.metrics.system import NodeSystemCollector
from ember.object_store.store import ObjectStore
from ember.rpc import dispatch
from ember.scheduler.ledger import ResourceLedger

COMMON = {"SessionName": "session_x", "NodeAddress": "10.0.0.7"}
FAM = Families(lambda: dict(COMMON))


def scrape(*collectors) -> dict[str, list]:
    """name -> samples (as Prometheus parses the text), for the given collectors."""
    reg = CollectorRegistry(auto_describe=False)
    for c in collectors:
        reg.register(c)
    text = generate_latest(reg).decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(samples, **labels) -> float:
    hits = [
        s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(hits) == 1, (labels, samples)
    return hits[0]


def every_sample_has_common_labels(got: dict[str, list]) -> None:
    for name, samples in got.items():
        for s in samples:
            assert {k: s.labels[k] for k in COMMON} == COMMON, (name, s)


@dataclasses.dataclass
class Spill:
    spilled_objects: int = 0
    spilled_bytes: int = 0
    restored_objects: int = 0
    restored_bytes: int = 0
    bytes_on_disk: int = 0


def test_object_store_figures_follow_the_store():
    store = ObjectStore(64 * 4096)
    spill = Spill(spilled_objects=3, spilled_bytes=3 * 8192, restored_objects=1,
                  restored_bytes=8192, bytes_on_disk=2 * 8192)  # fmt: skip
    collector = ObjectStoreCollector(FAM, store, lambda: spill, in_shm=True)
    got = scrape(collector)
    every_sample_has_common_labels(got)
    mem = got[names.OBJECT_STORE_MEMORY]
    assert value(mem, Location="MMAP_SHM", ObjectState="SEALED") == 0
    assert value(got[names.OBJECT_STORE_AVAILABLE]) == 64 * 4096

    store.create(b"a" * 20, 3 * 4096)
    store.seal(b"a" * 20)
    store.create(b"b" * 20, 4096)  # not sealed yet
    got = scrape(collector)
    mem = got[names.OBJECT_STORE_MEMORY]
    assert value(mem, Location="MMAP_SHM", ObjectState="SEALED") == 3 * 4096
    assert value(mem, Location="MMAP_SHM", ObjectState="UNSEALED") == 4096
    assert value(mem, Location="SPILLED") == 2 * 8192
    assert value(got[names.OBJECT_STORE_USED]) == 4 * 4096
    assert value(got[names.OBJECT_STORE_AVAILABLE]) == 60 * 4096
    assert value(got[names.OBJECT_STORE_NUM_LOCAL_OBJECTS]) == 2
    assert value(got[names.SPILL_REQUESTS], Type="Spilled") == 3
    assert value(got[names.SPILL_REQUESTS], Type="Restored") == 1
    assert value(got[names.SPILL_BYTES], Type="Spilled") == 3 * 8192

    on_disk = scrape(ObjectStoreCollector(FAM, store, lambda: spill, in_shm=False))
    assert value(on_disk[names.OBJECT_STORE_MEMORY], Location="MMAP_DISK",
                 ObjectState="SEALED") == 3 * 4096  # fmt: skip


def test_resources_used_and_available_and_waiting_requests():
    ledger = ResourceLedger({"CPU": 2.0, "memory": 1000.0})
    waiting = [0, 0]
    collector = SchedulingCollector(
        FAM, ledger.totals, ledger.available, lambda: (waiting[0], waiting[1])
    )
    lease = ledger.acquire({"CPU": 1.5})
    waiting[:] = [4, 1]
    got = scrape(collector)
    res = got[names.RESOURCES]
    assert value(res, Name="CPU", State="USED") == 1.5
    assert value(res, Name="CPU", State="AVAILABLE") == 0.5
    assert value(res, Name="memory", State="USED") == 0
    unsched = got[names.UNSCHEDULEABLE_TASKS]
    assert value(unsched, Reason="WaitingForResources") == 4
    assert value(unsched, Reason="Infeasible") == 1
    ledger.release(lease.lease_id)
    assert value(scrape(collector)[names.RESOURCES], Name="CPU", State="USED") == 0


def test_failures_are_counters_with_rays_names():
    counts = FailureCounts()
    counts.unexpected_worker_failures = 2
    counts.evicted(False, "hog")
    counts.evicted(False, "hog")
    counts.evicted(True, "Cache")
    got = scrape(FailureCollector(FAM, counts))
    assert value(got[names.UNEXPECTED_WORKER_FAILURES]) == 2
    ev = got[names.MEMORY_EVICTIONS]
    assert value(ev, Type="Task", Name="hog") == 2
    assert value(ev, Type="Actor", Name="Cache") == 1


def test_actors_placement_groups_and_tasks_by_state():
    actors = [("ALIVE", "Counter"), ("ALIVE", "Counter"), ("PENDING", "Counter"),
              ("DEAD", "Cache")]  # fmt: skip
    got = scrape(
        ActorsCollector(FAM, lambda: actors),
        PlacementGroupsCollector(FAM, lambda: ["CREATED", "CREATED", "REMOVED"]),
        TaskCountsCollector(
            FAM, lambda: {("FINISHED", "f", False): 7, ("RUNNING", "f", True): 1}
        ),
    )
    every_sample_has_common_labels(got)
    a = got[names.ACTORS]
    assert value(a, State="ALIVE", Name="Counter") == 2
    # Ray's state names (ActorTableData)
    assert value(a, State="PENDING_CREATION", Name="Counter") == 1
    assert value(a, State="DEAD", Name="Cache", Source="gcs") == 1
    pg = got[names.PLACEMENT_GROUPS]
    assert value(pg, State="CREATED") == 2
    assert value(pg, State="PENDING") == 0
    t = got[names.TASKS]
    assert value(t, State="FINISHED", Name="f", IsRetry="0") == 7
    assert value(t, State="RUNNING", Name="f", IsRetry="1") == 1


def test_rpc_latency_histograms_from_the_dispatch_counts(monkeypatch):
    monkeypatch.setattr(dispatch, "HANDLER_TIMES", {})
    for seconds in (0.00002, 0.00002, 0.003, 7.0):
        dispatch.record_handler_time("node.get_stats", seconds)
    dispatch.record_handler_time("node.free_objects", 100.0)
    got = scrape(RpcLatencyCollector(FAM))
    buckets = got[names.RPC_LATENCY + "_bucket"]
    stats = [s for s in buckets if s.labels["Method"] == "node.get_stats"]
    le = {s.labels["le"]: s.value for s in stats}
    assert le["0.01"] == 0  # 10 us
    assert le["0.05"] == 2  # 50 us
    assert le["5.0"] == 3  # 5 ms
    assert le["10000.0"] == 4
    assert le["+Inf"] == 4
    assert value(got[names.RPC_LATENCY + "_count"], Method="node.get_stats") == 4
    total = value(got[names.RPC_LATENCY + "_sum"], Method="node.get_stats")
    assert total == pytest.approx(7003.04)
    past = [s for s in buckets if s.labels["Method"] == "node.free_objects"]
    assert {s.labels["le"]: s.value for s in past}["+Inf"] == 1
    assert {s.labels["le"]: s.value for s in past}["60000.0"] == 0


def test_cumulative_buckets():
    assert cumulative_buckets([1, 2], [1, 0, 3]) == [
        ("1.0", 1),
        ("2.0", 1),
        ("+Inf", 4),
    ]


def test_node_system_figures_are_all_there():
    now = [100.0]
    collector = NodeSystemCollector(
        FAM, "10.0.0.7", True, os.getcwd(), clock=lambda: now[0]
    )
    first = scrape(collector)
    every_sample_has_common_labels(first)
    for name in names.NODE_METRICS[:16]:
        assert name in first, name
    assert value(first[names.NODE_CPU_COUNT], ip="10.0.0.7", IsHeadNode="1") == (
        os.cpu_count()
    )
    assert value(first[names.NODE_MEM_TOTAL]) > value(first[names.NODE_MEM_AVAILABLE])
    assert 0 <= value(first[names.NODE_DISK_UTILIZATION]) <= 100
    # speeds: 0 on the first scrape, then the change over the time between scrapes
    assert value(first[names.NODE_NETWORK_SEND_SPEED]) == 0
    now[0] += 2.0
    second = scrape(collector)
    sent = value(second[names.NODE_NETWORK_SENT]) - value(
        first[names.NODE_NETWORK_SENT]
    )
    assert value(second[names.NODE_NETWORK_SEND_SPEED]) == sent / 2.0
    assert not any(n in second for n in names.GPU_METRICS)


def test_components_sum_their_processes_and_forget_dead_pids():
    me = os.getpid()
    groups = {"node": [me], "worker": [me, 2**22 + 12345]}  # the second pid: none
    collector = ComponentCollector(FAM, lambda: groups)
    got = scrape(collector)
    rss = got[names.COMPONENT_RSS_BYTES]
    assert value(rss, Component="node") > 0
    assert value(got[names.COMPONENT_COUNT], Component="worker") == 1
    assert value(got[names.COMPONENT_RSS_MB], Component="node") == (
        value(rss, Component="node") / 2**20
    )
    assert names.COMPONENT_CPU_PERCENTAGE in got
    groups.pop("worker")
    got = scrape(collector)
    assert [s.labels["Component"] for s in got[names.COMPONENT_COUNT]] == ["node"]
