"""Scheduling, objects and failures across several real node daemons."""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.exceptions import TaskUnschedulableError
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def cluster(monkeypatch):
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False
    )
    yield c
    if ember.is_initialized():
        ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children())


@ember.remote
def where():
    return ember.get_runtime_context().get_node_id()


def test_custom_resources_place_tasks_on_the_node_that_has_them(cluster):
    a = cluster.add_node(num_cpus=1, resources={"accel": 1})
    b = cluster.add_node(num_cpus=1, resources={"disk": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    assert (
        ember.get(where.options(resources={"accel": 1}).remote(), timeout=60)
        == a.node_id
    )
    assert (
        ember.get(where.options(resources={"disk": 1}).remote(), timeout=60)
        == b.node_id
    )


def test_spread_uses_every_node(cluster):
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cluster.connect()
    seen = set(
        ember.get(
            [where.options(scheduling_strategy="SPREAD").remote() for _ in range(12)],
            timeout=60,
        )
    )
    assert seen == {n.node_id for n in cluster.list_all_nodes()}


def test_node_affinity_hard_and_soft(cluster):
    other = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cluster.connect()
    hard = NodeAffinitySchedulingStrategy(other.node_id, soft=False)
    assert ember.get(where.options(scheduling_strategy=hard).remote(), timeout=60) == (
        other.node_id
    )
    missing = "ab" * 16
    with pytest.raises(TaskUnschedulableError):
        ember.get(
            where.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(missing, soft=False)
            ).remote(),
            timeout=60,
        )
    soft = NodeAffinitySchedulingStrategy(missing, soft=True)
    assert ember.get(where.options(scheduling_strategy=soft).remote(), timeout=60)


def test_large_object_moves_between_nodes(cluster):
    other = cluster.add_node(num_cpus=1, resources={"far": 1})
    cluster.wait_for_nodes()
    cluster.connect()

    @ember.remote(resources={"far": 1})
    def make():
        return np.arange(100 * 1024 * 1024 // 8, dtype=np.int64)

    @ember.remote
    def total(arr):
        return int(arr.sum()), ember.get_runtime_context().get_node_id()

    ref = make.remote()
    arr = ember.get(ref, timeout=120)  # pulled from the other node into ours
    n = arr.size
    assert int(arr[-1]) == n - 1
    expected = n * (n - 1) // 2
    s, node = ember.get(
        total.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(
                cluster.head_node.node_id, soft=False
            )
        ).remote(ref),
        timeout=120,
    )
    assert (s, node) == (expected, cluster.head_node.node_id)
    assert other.node_id != node


def test_driver_put_is_read_on_another_node(cluster):
    other = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cluster.connect()

    @ember.remote
    def first_last(arr):
        return int(arr[0]), int(arr[-1]), ember.get_runtime_context().get_node_id()

    ref = ember.put(np.arange(5_000_000, dtype=np.int64))
    strategy = NodeAffinitySchedulingStrategy(other.node_id, soft=False)
    assert ember.get(
        first_last.options(scheduling_strategy=strategy).remote(ref), timeout=60
    ) == (0, 4_999_999, other.node_id)


def test_actor_on_another_node_is_called_directly(cluster):
    other = cluster.add_node(num_cpus=1, resources={"far": 1})
    cluster.wait_for_nodes()
    cluster.connect()

    @ember.remote(resources={"far": 1})
    class Counter:
        def __init__(self):
            self.n = 0

        def inc(self):
            self.n += 1
            return self.n, ember.get_runtime_context().get_node_id()

    c = Counter.remote()
    results = ember.get([c.inc.remote() for _ in range(5)], timeout=60)
    assert [r[0] for r in results] == [1, 2, 3, 4, 5]
    assert {r[1] for r in results} == {other.node_id}


def test_tasks_of_a_dead_node_are_retried_elsewhere(cluster):
    victim = cluster.add_node(num_cpus=1, resources={"spot": 1})
    victim_id = victim.node_id
    cluster.add_node(num_cpus=1, resources={"spot": 1})
    cluster.wait_for_nodes()
    cluster.connect()

    @ember.remote
    class Gate:
        def __init__(self):
            self.arrived = []

        def arrive(self, node):
            self.arrived.append(node)

        def nodes(self):
            return list(self.arrived)

    gate = Gate.options(
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(
            cluster.head_node.node_id, soft=False
        ),
    ).remote()

    @ember.remote(resources={"spot": 1}, max_retries=2)
    def work(g):
        me = ember.get_runtime_context().get_node_id()
        ember.get(g.arrive.remote(me))
        if me == victim_id:
            import time

            time.sleep(3600)  # held here until the node dies
        return me

    prefer_victim = NodeAffinitySchedulingStrategy(victim_id, soft=True)
    refs = [work.options(scheduling_strategy=prefer_victim).remote(gate)]
    assert wait_until(lambda: victim_id in ember.get(gate.nodes.remote()), 60)
    cluster.remove_node(victim, allow_graceful=False)
    done = ember.get(refs, timeout=120)
    assert victim.node_id not in done
    assert wait_until(
        lambda: (
            not [
                n for n in ember.nodes() if n["NodeID"] == victim.node_id and n["Alive"]
            ]
        ),
        30,
    )
    assert os.environ.get(session.TOKEN_ENV)


def test_default_policy_runs_tasks_next_to_their_large_arguments(cluster):
    # Two CPUs there: the lease that made the object may still linger on one.
    other = cluster.add_node(num_cpus=2, resources={"far": 1})
    cluster.wait_for_nodes()
    cluster.connect()

    @ember.remote(resources={"far": 1})
    def make():
        return np.ones(2_000_000)

    ref = make.remote()
    ember.wait([ref], timeout=60)
    # A plain task taking that object goes where the bytes are.
    got = ember.get(_where_with.remote(ref), timeout=60)
    assert got == other.node_id


@ember.remote
def _where_with(arr):
    return ember.get_runtime_context().get_node_id()


def test_object_whose_only_copy_was_on_a_dead_node_is_lost(cluster):
    from ember.exceptions import ObjectLostError

    doomed = cluster.add_node(num_cpus=1, resources={"far": 1})
    cluster.wait_for_nodes()
    cluster.connect()

    # Without retries its task cannot run again to rebuild it (test_lineage.py).
    @ember.remote(resources={"far": 1}, max_retries=0)
    def make():
        return np.ones(1_000_000)

    ref = make.remote()
    ember.wait([ref], timeout=60, fetch_local=False)
    cluster.remove_node(doomed, allow_graceful=False)
    assert wait_until(
        lambda: (
            not [
                n for n in ember.nodes() if n["NodeID"] == doomed.node_id and n["Alive"]
            ]
        ),
        30,
    )
    with pytest.raises(ObjectLostError):
        ember.get(ref, timeout=60)
