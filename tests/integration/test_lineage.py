"""Lost objects across real nodes: rebuilt from lineage, or the named error."""

from __future__ import annotations

import asyncio

import numpy as np
import psutil
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.exceptions import (
    ObjectLostError,
    ObjectReconstructionFailedLineageEvictedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    OwnerDiedError,
)
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = pytest.mark.multiprocess

N = 200_000  # int64s: 1.6 MB, a stored object


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
class Gate:
    """Records where tasks ran; lets a task wait until the test says go."""

    def __init__(self):
        self.runs = []
        self.go_event = asyncio.Event()

    async def arrive(self, what):
        self.runs.append(what)

    async def seen(self):
        return list(self.runs)

    async def go(self):
        self.go_event.set()

    async def wait_go(self):
        await self.go_event.wait()


def _here():
    return ember.get_runtime_context().get_node_id()


@ember.remote(resources={"spot": 1})
def make(gate, n):
    ember.get(gate.arrive.remote(("make", _here())))
    return _here(), np.full(n, 7, dtype=np.int64)


@ember.remote(resources={"spot": 1})
def plus_one(gate, made):
    ember.get(gate.arrive.remote(("plus_one", _here())))
    return _here(), made[1] + 1


def _on(node):
    return NodeAffinitySchedulingStrategy(node.node_id, soft=True)


def _kill(cluster, node):
    cluster.remove_node(node, allow_graceful=False)
    assert wait_until(
        lambda: (
            not [n for n in ember.nodes() if n["NodeID"] == node.node_id and n["Alive"]]
        ),
        30,
    )


def _spot_cluster(cluster):
    """Two nodes that can run the tasks: the victim (first choice) and the spare."""
    victim = cluster.add_node(num_cpus=1, resources={"spot": 1})
    spare = cluster.add_node(num_cpus=1, resources={"spot": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    gate = Gate.options(
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(
            cluster.head_node.node_id, soft=False
        ),
    ).remote()
    return victim, spare, gate


def test_a_lost_task_output_is_rebuilt_for_the_driver(cluster):
    victim, spare, gate = _spot_cluster(cluster)
    ref = make.options(scheduling_strategy=_on(victim)).remote(gate, N)
    ember.wait([ref], timeout=60, fetch_local=False)  # no copy comes to the driver
    _kill(cluster, victim)
    node, arr = ember.get(ref, timeout=120)
    assert node == spare.node_id
    assert int(arr.sum()) == 7 * N
    assert ember.get(gate.seen.remote()) == [
        ("make", victim.node_id),
        ("make", spare.node_id),
    ]


def test_a_lost_output_is_rebuilt_for_a_task_that_owns_it(cluster):
    victim, spare, gate = _spot_cluster(cluster)
    cluster.add_node(num_cpus=1, resources={"parent": 1})
    cluster.wait_for_nodes()

    # Defined here, so that it is pickled by value inside parent().
    @ember.remote(resources={"spot": 1})
    def make_here(gate, n):
        node = ember.get_runtime_context().get_node_id()
        ember.get(gate.arrive.remote(("make", node)))
        return node, np.full(n, 7, dtype=np.int64)

    @ember.remote(resources={"parent": 1})
    def parent(gate, victim_id):
        child = make_here.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(victim_id, soft=True)
        ).remote(gate, N)
        ember.wait([child], timeout=60, fetch_local=False)
        ember.get(gate.arrive.remote(("parent waits", "")))
        ember.get(gate.wait_go.remote())
        node, arr = ember.get(child, timeout=120)
        return node, int(arr.sum())

    done = parent.remote(gate, victim.node_id)
    assert wait_until(lambda: ("parent waits", "") in ember.get(gate.seen.remote()), 60)
    _kill(cluster, victim)
    gate.go.remote()
    assert ember.get(done, timeout=120) == (spare.node_id, 7 * N)
    runs = [r for r in ember.get(gate.seen.remote()) if r[0] == "make"]
    assert runs == [("make", victim.node_id), ("make", spare.node_id)]


def test_a_lost_argument_is_rebuilt_first(cluster):
    victim, spare, gate = _spot_cluster(cluster)
    a = make.options(scheduling_strategy=_on(victim)).remote(gate, N)
    b = plus_one.options(scheduling_strategy=_on(victim)).remote(gate, a)
    ember.wait([b], timeout=60, fetch_local=False)
    del a  # only b's lineage keeps a's now
    _kill(cluster, victim)
    node, arr = ember.get(b, timeout=120)
    assert node == spare.node_id
    assert int(arr.sum()) == 8 * N
    assert ember.get(gate.seen.remote()) == [
        ("make", victim.node_id),
        ("plus_one", victim.node_id),
        ("make", spare.node_id),
        ("plus_one", spare.node_id),
    ]


def test_a_task_submitted_after_the_loss_waits_for_its_argument(cluster):
    victim, spare, gate = _spot_cluster(cluster)
    a = make.options(scheduling_strategy=_on(victim)).remote(gate, N)
    ember.wait([a], timeout=60, fetch_local=False)
    _kill(cluster, victim)
    # The spare has one CPU: a plus_one holding it while a is rebuilt would hang.
    node, arr = ember.get(plus_one.remote(gate, a), timeout=120)
    assert node == spare.node_id
    assert int(arr.sum()) == 8 * N
    assert [r[0] for r in ember.get(gate.seen.remote())] == ["make", "make", "plus_one"]


def test_retries_spent_by_a_crash_leave_none_for_a_rebuild(cluster):
    victim, _spare, gate = _spot_cluster(cluster)

    @ember.remote(resources={"spot": 1}, max_retries=1)
    def crash_once(gate, n):
        import os

        first = not ember.get(gate.seen.remote())
        ember.get(gate.arrive.remote(("crash_once", _here())))
        if first:
            os._exit(1)  # takes the one retry
        return np.full(n, 1, dtype=np.int64)

    ref = crash_once.options(scheduling_strategy=_on(victim)).remote(gate, N)
    ember.wait([ref], timeout=60, fetch_local=False)
    assert len(ember.get(gate.seen.remote())) == 2
    _kill(cluster, victim)
    with pytest.raises(ObjectReconstructionFailedMaxAttemptsExceededError) as info:
        ember.get(ref, timeout=60)
    assert "crash_once" in str(info.value)
    assert "max_retries" in str(info.value)
    assert len(ember.get(gate.seen.remote())) == 2  # not run again


def test_a_put_object_lost_with_its_node_names_the_node(cluster):
    # The driver's own node daemon dies (the control service and the driver
    # live on): a task on another node cannot pull the put value any more.
    spare = cluster.add_node(num_cpus=1, resources={"spot": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    head = cluster.head_node
    gate = Gate.options(
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(spare.node_id, False),
    ).remote()
    ember.get(gate.seen.remote())
    put_ref = ember.put(np.zeros(N, dtype=np.int64))

    @ember.remote(resources={"spot": 1})
    def read_later(gate, boxed):
        ember.get(gate.arrive.remote("waiting"))
        ember.get(gate.wait_go.remote())
        try:
            ember.get(boxed[0], timeout=60)
        except ObjectLostError as err:
            return type(err).__name__, str(err)
        return "read", ""

    done = read_later.remote(gate, [put_ref])
    assert wait_until(lambda: ember.get(gate.seen.remote()) == ["waiting"], 60)
    _kill(cluster, head)
    gate.go.remote()
    kind, message = ember.get(done, timeout=60)
    assert kind == "ObjectLostError"
    assert "put()" in message
    assert head.node_id in message
    with pytest.raises(ObjectLostError, match="put"):
        ember.get(put_ref, timeout=10)  # the owner says the same


def test_a_borrower_of_a_dead_owners_object_gets_owner_died(cluster):
    spare = cluster.add_node(num_cpus=1, resources={"spot": 1})
    cluster.wait_for_nodes()
    cluster.connect()

    @ember.remote(resources={"spot": 1})
    class Maker:
        def make(self):
            return [ember.put(np.ones(N))]

        def who(self):
            import os

            ctx = ember.get_runtime_context()
            return os.getpid(), ctx.get_worker_id()

    maker = Maker.remote()
    (inner,) = ember.get(maker.make.remote())
    pid, worker_id = ember.get(maker.who.remote())
    ember.kill(maker)
    assert wait_until(lambda: not psutil.pid_exists(pid), 30)
    with pytest.raises(OwnerDiedError) as info:
        ember.get(inner, timeout=60)
    message = str(info.value)
    assert worker_id in message
    assert spare.node_id in message  # the owner's node
    assert info.value.owner_address in message
    assert info.value.object_ref_hex == inner.hex()


def test_evicted_lineage_is_reported_as_such(cluster, monkeypatch):
    # A cap no record fits under: the driver keeps no lineage at all.
    monkeypatch.setenv("EMBER_MAX_LINEAGE_BYTES", "1")
    victim, _spare, gate = _spot_cluster(cluster)
    ref = make.options(scheduling_strategy=_on(victim)).remote(gate, N)
    ember.wait([ref], timeout=60, fetch_local=False)
    _kill(cluster, victim)
    with pytest.raises(ObjectReconstructionFailedLineageEvictedError) as info:
        ember.get(ref, timeout=60)
    assert "EMBER_MAX_LINEAGE_BYTES" in str(info.value)
    assert len(ember.get(gate.seen.remote())) == 1  # not run again


@ember.remote(resources={"spot": 0.5}, max_restarts=1, max_task_retries=1)
class Maker:
    def make(self, gate, n):
        ember.get(gate.arrive.remote(("Maker.make", _here())))
        return _here(), np.full(n, 7, dtype=np.int64)


def test_a_lost_actor_call_output_is_rebuilt_on_the_restarted_actor(cluster):
    victim, spare, gate = _spot_cluster(cluster)
    maker = Maker.options(scheduling_strategy=_on(victim)).remote()
    ref = maker.make.remote(gate, N)
    ember.wait([ref], timeout=60, fetch_local=False)  # no copy comes to the driver
    _kill(cluster, victim)
    node, arr = ember.get(ref, timeout=120)
    assert node == spare.node_id
    assert int(arr.sum()) == 7 * N
    assert ember.get(gate.seen.remote()) == [
        ("Maker.make", victim.node_id),
        ("Maker.make", spare.node_id),
    ]


def test_an_actor_call_without_task_retries_is_not_rebuilt(cluster):
    victim, _spare, gate = _spot_cluster(cluster)
    maker = Maker.options(scheduling_strategy=_on(victim), max_task_retries=0).remote()
    ref = maker.make.remote(gate, N)
    ember.wait([ref], timeout=60, fetch_local=False)
    _kill(cluster, victim)
    with pytest.raises(ObjectLostError):
        ember.get(ref, timeout=120)
