"""Node labels and label scheduling, placement-group helpers, and the constructors
and byte form of ``ray.exceptions`` (public API only; passes on Ray 2.60 too)."""

from __future__ import annotations

import re

import pytest

import ember as ray
from ember import exceptions
from ember.util.placement_group import (
    NODE_ID_LABEL_KEY,
    VALID_PLACEMENT_GROUP_STRATEGIES,
    PlacementGroup,
    check_placement_group_index,
    placement_group,
    placement_group_table,
    remove_placement_group,
    validate_placement_group,
)
from ember.util.scheduling_strategies import (
    DoesNotExist,
    Exists,
    In,
    NodeLabelSchedulingStrategy,
    NotIn,
)

# -- label operators and strategy ---------------------------------------------------


def test_label_operators_check_their_values():
    assert In("a", "b").values == ["a", "b"]
    assert NotIn("a").values == ["a"]
    Exists()
    DoesNotExist()
    for bad in (lambda: In(), lambda: NotIn(), lambda: In("a", 1)):
        with pytest.raises(ValueError):
            bad()


def test_node_label_strategy_checks_its_maps():
    with pytest.raises(ValueError, match="cannot both be empty"):
        NodeLabelSchedulingStrategy({})
    with pytest.raises(ValueError):
        NodeLabelSchedulingStrategy({"region": "us"})
    with pytest.raises(ValueError):
        NodeLabelSchedulingStrategy({1: In("us")})
    s = NodeLabelSchedulingStrategy({"region": In("us")}, soft={"disk": Exists()})
    assert [(e.key, type(e.operator).__name__) for e in s.hard] == [("region", "In")]
    assert [(e.key, type(e.operator).__name__) for e in s.soft] == [("disk", "Exists")]


@pytest.mark.cluster_only("node labels live on node daemons")
def test_init_labels_schedule_tasks_and_actors(shutdown_only):
    ray.init(num_cpus=2, labels={"region": "us"})
    (node,) = ray.nodes()
    assert node["Labels"]["region"] == "us"
    assert node["Labels"][NODE_ID_LABEL_KEY] == node["NodeID"]

    @ray.remote
    def labels():
        return ray.get_runtime_context().get_node_labels()

    us = NodeLabelSchedulingStrategy({"region": In("us")}, soft={"gpu": Exists()})
    got = ray.get(labels.options(scheduling_strategy=us).remote(), timeout=60)
    assert got["region"] == "us"
    assert got[NODE_ID_LABEL_KEY] == node["NodeID"]
    not_eu = NodeLabelSchedulingStrategy({"region": NotIn("eu")})
    assert ray.get(labels.options(scheduling_strategy=not_eu).remote(), timeout=60)

    @ray.remote(num_cpus=1)
    class Where:
        def region(self):
            return ray.get_runtime_context().get_node_labels()["region"]

    actor = Where.options(scheduling_strategy=us).remote()
    assert ray.get(actor.region.remote(), timeout=60) == "us"

    eu = NodeLabelSchedulingStrategy({"region": In("eu")})
    pending = labels.options(scheduling_strategy=eu).remote()
    ready, _ = ray.wait([pending], timeout=1.0)
    assert not ready  # no node matches: infeasible, so it waits


@pytest.mark.ember_only
def test_init_rejects_labels_that_are_not_str_to_str(shutdown_only):
    # Ray 2.60 starts the node and its raylet fails (init times out); ember checks first.
    with pytest.raises(TypeError):
        ray.init(num_cpus=1, labels={"region": 1})
    with pytest.raises(ValueError, match="label"):
        ray.init(num_cpus=1, labels={"bad key!": "v"})


# -- placement-group helpers --------------------------------------------------------


def test_placement_group_constants_and_empty_group():
    assert NODE_ID_LABEL_KEY == "ray.io/node-id"
    assert {
        "PACK",
        "SPREAD",
        "STRICT_PACK",
        "STRICT_SPREAD",
    } == VALID_PLACEMENT_GROUP_STRATEGIES
    empty = PlacementGroup.empty()
    assert empty.is_empty
    assert empty == PlacementGroup.empty()
    check_placement_group_index(empty, -1)
    with pytest.raises(ValueError, match="bundle index must be -1"):
        check_placement_group_index(empty, 0)


def test_validate_placement_group():
    validate_placement_group([{"CPU": 1}], strategy="SPREAD")
    validate_placement_group(
        [{"CPU": 1}], topology_strategy={NODE_ID_LABEL_KEY: "PACK"}
    )
    for kwargs in (
        {"bundles": []},
        {"bundles": [{}]},
        {"bundles": [{"CPU": 1}], "strategy": "BOGUS"},
        {"bundles": [{"CPU": 1}], "lifetime": "forever"},
        {
            "bundles": [{"CPU": 1}],
            "strategy": "PACK",
            "topology_strategy": {NODE_ID_LABEL_KEY: "PACK"},
        },
        {"bundles": [{"CPU": 1}], "topology_strategy": {NODE_ID_LABEL_KEY: "BOGUS"}},
        {"bundles": [{"CPU": 1}], "topology_strategy": "PACK"},
        {"bundles": [{"CPU": 1}], "bundle_label_selector": [{}, {}]},
    ):
        with pytest.raises(ValueError):
            validate_placement_group(**kwargs)


def test_topology_strategy_sets_the_node_level_strategy(ray_module):
    pg = placement_group(
        [{"CPU": 1}, {"CPU": 1}], topology_strategy={NODE_ID_LABEL_KEY: "STRICT_PACK"}
    )
    assert pg.wait(30)
    assert not pg.is_empty
    check_placement_group_index(pg, 1)
    with pytest.raises(ValueError):
        check_placement_group_index(pg, 2)
    assert placement_group_table(pg)["strategy"] == "STRICT_PACK"
    remove_placement_group(pg)
    with pytest.raises(ValueError):
        placement_group([{"CPU": 1}], strategy="PACK", topology_strategy={})


@pytest.mark.ember_only
def test_topology_labels_other_than_the_node_id_are_refused():
    # Ray packs bundles into one accelerator topology domain; ember has no model of it.
    with pytest.raises(NotImplementedError, match="topology"):
        validate_placement_group(
            [{"CPU": 1}], topology_strategy={"ray.io/gpu-domain": "STRICT_PACK"}
        )


# -- exceptions: Ray's constructors and byte form ----------------------------------


def test_exception_constructors_take_rays_arguments():
    assert str(exceptions.ActorDiedError()) == exceptions.ActorDiedError.BASE_ERROR_MSG
    actor = exceptions.RayActorError(actor_id="ab", error_msg="it broke")
    assert (actor.actor_id, str(actor), actor.actor_init_failed) == (
        "ab",
        "it broke",
        False,
    )
    assert str(exceptions.RayActorError()) == exceptions.RayActorError.BASE_ERROR_MSG
    unavailable = exceptions.ActorUnavailableError("restarting", None)
    assert "is unavailable: restarting" in str(unavailable)
    assert str(exceptions.TaskUnschedulableError("no node")) == (
        "The task is not schedulable: no node"
    )
    assert str(exceptions.ActorUnschedulableError("no node")) == (
        "The actor is not schedulable: no node"
    )
    assert str(exceptions.NodeDiedError("node gone")) == "node gone"
    assert str(exceptions.OutOfMemoryError("low memory")) == "low memory"
    assert str(exceptions.RpcError("broken", rpc_code=14)) == "broken"
    assert str(exceptions.RaySystemError("boom")) == "System error: boom"
    lost = exceptions.ObjectLostError("ab" * 14, None, "")
    assert str(lost).startswith(f"Failed to retrieve object {'ab' * 14}.")
    owner = exceptions.OwnerDiedError("ab" * 14, None, "")
    assert "owner has exited" in str(owner)
    failed = exceptions.ObjectReconstructionFailedError("ab" * 14)
    assert "[UNKNOWN]" in str(failed)
    for cls in (
        exceptions.TaskUnschedulableError,
        exceptions.ActorUnschedulableError,
        exceptions.NodeDiedError,
        exceptions.OutOfMemoryError,
        exceptions.ActorAlreadyExistsError,
    ):
        with pytest.raises(TypeError):
            cls()
    assert exceptions.ActorDiedError in exceptions.RAY_EXCEPTION_TYPES
    assert exceptions.RayError in exceptions.RAY_EXCEPTION_TYPES


def test_task_error_survives_to_bytes(ray_module):
    @ray.remote
    def boom():
        raise KeyError("missing key")

    with pytest.raises(KeyError) as info:
        ray.get(boom.remote())
    err = info.value
    back = exceptions.RayError.from_bytes(err.to_bytes())
    assert isinstance(back, KeyError)
    assert isinstance(back, exceptions.RayTaskError)
    assert str(back) == str(err)
    died = exceptions.ActorDiedError()
    assert str(exceptions.RayError.from_bytes(died.to_bytes())) == str(died)


def test_killed_actor_error_names_the_actor(ray_module):
    @ray.remote
    class Victim:
        def ping(self):
            return "pong"

    v = Victim.remote()
    assert ray.get(v.ping.remote()) == "pong"
    ray.kill(v)

    def call_until_it_fails():
        for _ in range(1000):  # kill is asynchronous: calls fail soon after it
            ray.get(v.ping.remote())

    with pytest.raises(exceptions.ActorDiedError) as info:
        call_until_it_fails()
    text = str(info.value)
    assert text.startswith(exceptions.ActorDiedError.BASE_ERROR_MSG)
    assert re.search(r"\tclass_name: \S*Victim\n", text), text  # Ray: the qualname
