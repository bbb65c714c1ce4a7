"""ember.cluster_utils.Cluster: several node daemons on 127.0.0.1, one driver.

Cross-node scheduling is being built separately: these tests check what a
multi-node cluster already guarantees (registration, resources, node death,
plain tasks), not placement by custom resources.
"""

from __future__ import annotations

import os

import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def cluster(monkeypatch):
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    monkeypatch.delenv(session.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"head_only": 1}},
        shutdown_at_exit=False,
    )
    yield c
    c.shutdown()
    assert wait_until(lambda: not live_children()), [
        p.cmdline()[:4] for p in live_children()
    ]
    assert session.TOKEN_ENV not in os.environ


def test_cluster_nodes_register_and_resources_add_up(cluster):
    a = cluster.add_node(num_cpus=2, resources={"accel": 2})
    b = cluster.add_node(num_cpus=3, resources={"disk": 1})
    cluster.wait_for_nodes(timeout=30)
    assert [n.is_head() for n in cluster.list_all_nodes()] == [True, False, False]
    cluster.connect(namespace="cu")

    nodes = ember.nodes()
    assert {n["NodeID"] for n in nodes} == {n.node_id for n in cluster.list_all_nodes()}
    assert all(n["Alive"] for n in nodes)
    head = [n for n in nodes if n["IsHeadNode"]]
    assert [n["NodeID"] for n in head] == [cluster.head_node.node_id]

    totals = ember.cluster_resources()
    assert totals["CPU"] == 6
    assert totals["accel"] == 2
    assert totals["disk"] == 1
    assert totals["head_only"] == 1
    assert totals["node:127.0.0.1"] == 3
    assert totals["node:__internal_head__"] == 1
    assert ember.get_runtime_context().get_node_id() == cluster.head_node.node_id

    @ember.remote
    def square(x):
        return x * x

    assert ember.get([square.remote(i) for i in range(8)], timeout=60) == [
        i * i for i in range(8)
    ]
    assert {a.node_id, b.node_id} < {n["NodeID"] for n in ember.nodes()}


@pytest.mark.parametrize("graceful", [True, False])
def test_removed_node_is_dead(cluster, graceful):
    gone = cluster.add_node(num_cpus=2, resources={"accel": 1})
    cluster.connect()
    assert ember.cluster_resources()["CPU"] == 3
    cluster.remove_node(gone, allow_graceful=graceful)

    def dead() -> bool:
        return any(
            n["NodeID"] == gone.node_id and not n["Alive"] for n in ember.nodes()
        )

    assert wait_until(dead, timeout_s=15)
    assert "accel" not in ember.cluster_resources()
    assert ember.cluster_resources()["CPU"] == 1
    assert cluster.list_all_nodes() == [cluster.head_node]


def test_cluster_without_head_and_init_by_address(monkeypatch):
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    c = Cluster(shutdown_at_exit=False)
    try:
        first = c.add_node(num_cpus=1)
        c.add_node(num_cpus=1)
        assert first.is_head()
        ember.init(address=c.address, configure_logging=False)
        assert len(ember.nodes()) == 2
        assert ember.get_runtime_context().get_node_id() == first.node_id
    finally:
        ember.shutdown()
        c.shutdown()
    assert wait_until(lambda: not live_children())


def test_task_error_carries_the_ip_of_the_node_that_ran_it(cluster):
    """``TaskError.ip`` is the executing worker's node address (as in ``ember.nodes()``)."""
    other = cluster.add_node(
        num_cpus=1, resources={"other": 1}, node_ip_address="127.0.0.2"
    )
    cluster.wait_for_nodes(timeout=30)
    cluster.connect(namespace="ip")
    by_id = {n["NodeID"]: n["NodeManagerAddress"] for n in ember.nodes()}
    assert by_id[other.node_id] == "127.0.0.2"

    @ember.remote(num_cpus=0, resources={"other": 1}, max_retries=0)
    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError) as info:
        ember.get(fail.remote(), timeout=60)
    assert isinstance(info.value, ember.exceptions.TaskError)
    assert info.value.ip == "127.0.0.2"
    assert "ip=127.0.0.2" in str(info.value)

    @ember.remote(num_cpus=0, resources={"head_only": 1}, max_retries=0)
    def fail_on_head():
        raise ValueError("boom")

    with pytest.raises(ValueError) as info:
        ember.get(fail_on_head.remote(), timeout=60)
    assert info.value.ip == by_id[cluster.head_node.node_id] == "127.0.0.1"
