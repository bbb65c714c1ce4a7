"""Node labels and NodeLabelSchedulingStrategy across real node daemons."""

from __future__ import annotations

import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.util.placement_group import NODE_ID_LABEL_KEY
from ember.util.scheduling_strategies import (
    DoesNotExist,
    Exists,
    In,
    NodeLabelSchedulingStrategy,
    NotIn,
)

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def cluster(monkeypatch):
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "labels": {"region": "eu"}},
        shutdown_at_exit=False,
    )
    yield c
    if ember.is_initialized():
        ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children())


@ember.remote
def where():
    return ember.get_runtime_context().get_node_id()


def _on(hard=None, soft=None):
    return where.options(
        scheduling_strategy=NodeLabelSchedulingStrategy(hard, soft=soft)
    ).remote()


def test_tasks_and_actors_go_where_the_labels_match(cluster):
    us = cluster.add_node(num_cpus=1, labels={"region": "us", "disk": "ssd"})
    bare = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cluster.connect()
    head = cluster.head_node.node_id
    assert ember.get(_on({"region": In("us")}), timeout=60) == us.node_id
    assert ember.get(_on({"region": In("eu", "ap")}), timeout=60) == head
    assert ember.get(_on({"disk": Exists()}), timeout=60) == us.node_id
    assert ember.get(_on({"region": DoesNotExist()}), timeout=60) == bare.node_id
    assert ember.get(_on({"region": NotIn("eu", "us")}), timeout=60) == bare.node_id
    assert (
        ember.get(_on({NODE_ID_LABEL_KEY: In(bare.node_id)}), timeout=60)
        == bare.node_id
    )
    # A soft constraint prefers a matching node that has room; whether it has
    # room is what the scheduling node last heard (heartbeats), so a node the
    # tasks above just used may look busy for a moment: then the task runs
    # elsewhere, as a soft constraint allows.  Once the view is fresh it lands there.
    assert wait_until(
        lambda: ember.get(_on(soft={"disk": Exists()}), timeout=60) == us.node_id, 30
    )

    @ember.remote(num_cpus=1)
    class Where:
        def node(self):
            return ember.get_runtime_context().get_node_id()

        def labels(self):
            return ember.get_runtime_context().get_node_labels()

    actor = Where.options(
        scheduling_strategy=NodeLabelSchedulingStrategy({"region": In("us")})
    ).remote()
    assert ember.get(actor.node.remote(), timeout=60) == us.node_id
    assert ember.get(actor.labels.remote(), timeout=60) == {
        "region": "us",
        "disk": "ssd",
        NODE_ID_LABEL_KEY: us.node_id,
    }
    by_id = {n["NodeID"]: n["Labels"] for n in ember.nodes()}
    assert by_id[head] == {"region": "eu", NODE_ID_LABEL_KEY: head}
    assert by_id[bare.node_id] == {NODE_ID_LABEL_KEY: bare.node_id}


def test_unmatched_hard_constraint_waits_until_a_matching_node_joins(cluster):
    cluster.connect()
    ref = _on({"region": In("ap")})
    ready, _ = ember.wait([ref], timeout=1.0)
    assert not ready  # infeasible: pending, not failed
    ap = cluster.add_node(num_cpus=1, labels={"region": "ap"})
    assert ember.get(ref, timeout=60) == ap.node_id


def test_add_node_rejects_bad_labels(cluster):
    with pytest.raises(ValueError, match="label"):
        cluster.add_node(labels={"bad key!": "v"})
    with pytest.raises(ValueError, match=NODE_ID_LABEL_KEY):
        cluster.add_node(labels={NODE_ID_LABEL_KEY: "x"})
