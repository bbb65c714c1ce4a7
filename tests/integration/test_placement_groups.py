"""Placement groups across real node daemons: strategies, atomicity, scheduling into them."""

from __future__ import annotations

import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.util.placement_group import (
    get_current_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    mp = pytest.MonkeyPatch()
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        mp.delenv(var, raising=False)
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False
    )
    c.add_node(num_cpus=2)
    c.add_node(num_cpus=2)
    c.wait_for_nodes()
    c.connect()
    yield c
    ember.shutdown()
    c.shutdown()
    mp.undo()
    assert wait_until(lambda: not live_children())


@ember.remote(num_cpus=1)
def node_of():
    return ember.get_runtime_context().get_node_id()


def _in(pg, index=-1, capture=False):
    return PlacementGroupSchedulingStrategy(
        pg,
        placement_group_bundle_index=index,
        placement_group_capture_child_tasks=capture,
    )


def _bundle_nodes(pg):
    return [
        node
        for _, node in sorted(placement_group_table(pg)["bundles_to_node_id"].items())
    ]


def test_strict_spread_puts_each_bundle_on_its_own_node(cluster):
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert ember.get(pg.ready(), timeout=60) == pg
    nodes = _bundle_nodes(pg)
    assert len(set(nodes)) == 3
    for i in range(3):
        assert (
            ember.get(
                node_of.options(scheduling_strategy=_in(pg, i)).remote(), timeout=60
            )
            == nodes[i]
        )
    remove_placement_group(pg)


def test_strict_pack_uses_one_node(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")
    assert pg.wait(60)
    nodes = _bundle_nodes(pg)
    assert len(set(nodes)) == 1
    got = ember.get(
        [node_of.options(scheduling_strategy=_in(pg)).remote() for _ in range(4)],
        timeout=60,
    )
    assert set(got) == set(nodes)
    remove_placement_group(pg)


def test_infeasible_group_reserves_nothing_until_it_fits(cluster):
    before = ember.available_resources()["CPU"]
    pg = placement_group(
        [{"CPU": 2}] * 3, strategy="STRICT_SPREAD"
    )  # head has only 1 CPU
    assert not pg.wait(1)
    assert placement_group_table(pg)["state"] == "PENDING"
    assert wait_until(lambda: ember.available_resources().get("CPU") == before, 10)
    remove_placement_group(pg)
    assert placement_group_table(pg)["state"] == "REMOVED"


def test_resources_return_when_group_is_removed(cluster):
    before = ember.available_resources()["CPU"]
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD")
    assert pg.wait(60)
    assert wait_until(lambda: ember.available_resources().get("CPU") == before - 2, 10)
    remove_placement_group(pg)
    assert wait_until(lambda: ember.available_resources().get("CPU") == before, 10)


def test_children_are_captured_into_the_group(cluster):
    pg = placement_group([{"CPU": 1}], strategy="PACK")
    assert pg.wait(60)

    @ember.remote(num_cpus=0)
    def parent():
        current = get_current_placement_group()
        child_node = ember.get(node_of.options(num_cpus=1).remote())
        return current.id.hex() if current else None, child_node

    pg_hex, child_node = ember.get(
        parent.options(scheduling_strategy=_in(pg, capture=True)).remote(), timeout=60
    )
    assert pg_hex == pg.id.hex()
    assert child_node == _bundle_nodes(pg)[0]
    assert get_current_placement_group() is None  # the driver is in no group
    remove_placement_group(pg)


def test_actor_in_a_bundle(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert pg.wait(60)

    @ember.remote(num_cpus=1)
    class Where:
        def node(self):
            return ember.get_runtime_context().get_node_id()

    a = Where.options(scheduling_strategy=_in(pg, 1)).remote()
    assert ember.get(a.node.remote(), timeout=60) == _bundle_nodes(pg)[1]
    ember.kill(a)
    remove_placement_group(pg)


def test_bad_arguments_are_rejected(cluster):
    with pytest.raises(ValueError):
        placement_group([], strategy="PACK")
    with pytest.raises(ValueError):
        placement_group([{"CPU": 1}], strategy="TIGHT")
    with pytest.raises(ValueError):
        placement_group([{}])
    pg = placement_group([{"CPU": 1}])
    with pytest.raises(ValueError):
        node_of.options(scheduling_strategy=_in(pg, 5)).remote()
    remove_placement_group(pg)
