"""Tests for lease placement (``scheduler/policy.decide``) and bundle placement
(``scheduler/placement.py``): pure, no processes."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, strategies as st

from ember.common.aio import Supervisor
from ember.node.cluster_view import ClusterView
from ember.protocol.messages import NodeInfo
from ember.scheduler.ledger import ResourceLedger
from ember.scheduler.placement import (
    STRATEGIES,
    bundle_resource_names,
    feasible_ever,
    place_bundles,
    request_in_bundle,
)
from ember.scheduler.policy import LOCAL, Decision, NodeView, decide
from ember.scheduler.resources import add, fits

A, B, C = b"A" * 20, b"B" * 20, b"C" * 20
DEFAULT: dict[str, object] = {}
ONE = {"CPU": 1.0}


def node(
    node_id: bytes, total: dict[str, float], free: dict[str, float] | None = None
) -> NodeView:
    return NodeView(node_id, total, dict(total) if free is None else free)


def dead(view: NodeView) -> NodeView:
    return NodeView(view.node_id, view.total, view.available, alive=False)


def cluster(*views: NodeView) -> dict[bytes, NodeView]:
    return {v.node_id: v for v in views}


def run(
    nodes: dict[bytes, NodeView],
    request: dict[str, float] = ONE,
    strategy: dict[str, object] = DEFAULT,
    *,
    spilled: bool = False,
    rotation: int = 0,
) -> Decision:
    return decide(request, strategy, A, nodes, spilled, rotation)


def spill(to: bytes) -> Decision:
    return Decision("spill", to)


def affinity(target: bytes, soft: bool) -> dict[str, object]:
    return {"type": "node_affinity", "node_id": target.hex(), "soft": soft}


# -- DEFAULT ------------------------------------------------------------------------------


def test_policy_local_when_this_node_has_room() -> None:
    nodes = cluster(node(A, {"CPU": 2}), node(B, {"CPU": 8}))
    assert run(nodes) == LOCAL


def test_policy_spills_back_to_a_node_with_room_when_this_one_is_busy() -> None:
    nodes = cluster(
        node(A, {"CPU": 2}, {"CPU": 0.5}),
        node(B, {"CPU": 2}, {"CPU": 0.0}),
        node(C, {"CPU": 2}, {"CPU": 1.0}),
    )
    assert run(nodes) == spill(C)


def test_policy_waits_here_when_no_node_has_room_but_this_one_could() -> None:
    nodes = cluster(node(A, {"CPU": 2}, {"CPU": 0}), node(B, {"CPU": 2}, {"CPU": 0}))
    assert run(nodes) == LOCAL


def test_policy_sends_what_this_node_can_never_hold_to_one_that_can() -> None:
    nodes = cluster(
        node(A, {"CPU": 4}),
        node(B, {"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 0}),
        node(C, {"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 0}),
    )
    assert run(nodes, {"GPU": 1}) == spill(B)  # to wait there; the first by id


def test_policy_infeasible_when_no_live_node_could_ever_hold_it() -> None:
    nodes = cluster(node(A, {"CPU": 2}), dead(node(B, {"CPU": 2, "GPU": 1})))
    assert run(nodes, {"GPU": 1}).kind == "infeasible"
    assert run(nodes, {"CPU": 3}).kind == "infeasible"
    assert run(nodes, {"CPU": 2, "custom": 0.0}) == LOCAL  # zero amounts ask nothing


def test_policy_never_spills_to_a_dead_node() -> None:
    nodes = cluster(node(A, {"CPU": 1}, {"CPU": 0}), dead(node(B, {"CPU": 4})))
    assert run(nodes) == LOCAL


def test_policy_a_spilled_request_is_never_spilled_again() -> None:
    busy = cluster(node(A, {"CPU": 1}, {"CPU": 0}), node(B, {"CPU": 4}))
    assert run(busy) == spill(B)
    assert run(busy, spilled=True) == LOCAL  # waits here though B has room
    assert run(busy, {"CPU": 2}, spilled=True).kind == "infeasible"
    spread = {"type": "SPREAD"}
    assert run(busy, strategy=spread, spilled=True, rotation=1) == LOCAL


def test_policy_prefers_the_node_holding_the_arguments_while_it_has_room() -> None:
    near = {"locality": B.hex()}
    nodes = cluster(node(A, {"CPU": 2}), node(B, {"CPU": 2}))
    assert run(nodes, strategy=near) == spill(B)
    full = cluster(node(A, {"CPU": 2}), node(B, {"CPU": 2}, {"CPU": 0}))
    assert run(full, strategy=near) == LOCAL
    gone = cluster(node(A, {"CPU": 2}), dead(node(B, {"CPU": 2})))
    assert run(gone, strategy=near) == LOCAL
    assert run(nodes, strategy={"locality": A.hex()}) == LOCAL
    assert run(nodes, strategy={"locality": C.hex()}) == LOCAL  # unknown node


# -- SPREAD -------------------------------------------------------------------------------


def test_policy_spread_rotates_over_the_feasible_nodes() -> None:
    nodes = cluster(
        node(A, {"CPU": 1}, {"CPU": 0}),
        node(B, {"CPU": 1}, {"CPU": 0}),
        node(C, {"CPU": 4}),
        node(b"D" * 20, {"GPU": 1}),  # can never hold a CPU request
    )
    spread = {"type": "SPREAD"}
    got = [run(nodes, strategy=spread, rotation=r) for r in range(6)]
    assert got == [LOCAL, spill(B), spill(C)] * 2  # busy or not, in id order


def test_policy_spread_skips_dead_nodes_and_fails_when_nothing_fits() -> None:
    nodes = cluster(node(A, {"CPU": 1}), dead(node(B, {"CPU": 1})), node(C, {"CPU": 1}))
    spread = {"type": "SPREAD"}
    assert [run(nodes, strategy=spread, rotation=r) for r in range(2)] == [
        LOCAL,
        spill(C),
    ]
    assert run(nodes, {"GPU": 1}, spread).kind == "infeasible"


# -- node affinity ------------------------------------------------------------------------


def test_policy_hard_affinity_goes_to_its_node_even_when_busy() -> None:
    nodes = cluster(node(A, {"CPU": 4}), node(B, {"CPU": 1}, {"CPU": 0}))
    assert run(nodes, strategy=affinity(B, soft=False)) == spill(B)
    assert run(nodes, strategy=affinity(A, soft=False)) == LOCAL


def test_policy_hard_affinity_to_a_dead_or_too_small_node_is_unschedulable() -> None:
    nodes = cluster(node(A, {"CPU": 4}), dead(node(B, {"CPU": 4})), node(C, {"CPU": 1}))
    gone = run(nodes, strategy=affinity(B, soft=False))
    assert (gone.kind, gone.node_id) == ("unschedulable", B)
    assert B.hex() in gone.reason
    assert "dead or unknown" in gone.reason
    small = run(nodes, {"CPU": 2}, affinity(C, soft=False))
    assert (small.kind, small.node_id) == ("unschedulable", C)
    assert "can never hold the request" in small.reason
    unknown = run(nodes, strategy=affinity(b"Z" * 20, soft=False))
    assert unknown.kind == "unschedulable"


def test_policy_soft_affinity_falls_back_to_default_only_when_the_node_cannot_serve() -> (
    None
):
    nodes = cluster(
        node(A, {"CPU": 4}), dead(node(B, {"CPU": 4})), node(C, {"CPU": 1}, {"CPU": 0})
    )
    assert run(nodes, strategy=affinity(B, soft=True)) == LOCAL  # dead: DEFAULT
    assert run(nodes, {"CPU": 2}, affinity(C, soft=True)) == LOCAL  # too small
    # Alive and big enough: it goes there and waits, as in Ray.
    assert run(nodes, strategy=affinity(C, soft=True)) == spill(C)


# -- counting requests just spilled -------------------------------------------------------


def info(node_id: bytes, total: dict[str, float]) -> NodeInfo:
    return NodeInfo(
        node_id=node_id,
        address=f"tcp:127.0.0.1:{node_id[0]}",
        unix="",
        ip="127.0.0.1",
        resources=dict(total),
        available=dict(total),
    )


def test_policy_counts_what_it_just_spilled_until_the_next_heartbeat() -> None:
    view = ClusterView(A, Supervisor("test"))
    view.nodes = {B: info(B, {"CPU": 1}), C: info(C, {"CPU": 1})}
    local = ResourceLedger({"CPU": 1})
    local.acquire(ONE)
    targets = []
    for _ in range(3):
        d = decide(ONE, {}, A, view.views(local), False, 0)
        if d.kind == "spill":
            view.count_spilled(d.node_id, ONE)
        targets.append(d)
    # A burst spreads over every node with room, then waits here.
    assert targets == [spill(B), spill(C), LOCAL]
    assert view.nodes[B].available == {"CPU": 0.0}
    assert view.nodes[B].resources == {"CPU": 1}


# -- placement groups ---------------------------------------------------------------------


def test_placement_pack_puts_the_group_on_one_node_with_the_most_room() -> None:
    nodes = cluster(node(A, {"CPU": 2}), node(B, {"CPU": 4}), node(C, {"CPU": 3}))
    assert place_bundles([ONE, ONE], "PACK", nodes) == [B, B]
    assert place_bundles([ONE, ONE], "STRICT_PACK", nodes) == [B, B]


def test_placement_pack_uses_as_few_nodes_as_it_can_when_one_is_not_enough() -> None:
    nodes = cluster(node(A, {"CPU": 1}), node(B, {"CPU": 2}), node(C, {"CPU": 2}))
    got = place_bundles([ONE] * 4, "PACK", nodes)
    assert got is not None
    assert Counter(got) == {B: 2, C: 2}  # not A, B, B, C


def test_placement_strict_pack_is_one_node_or_nothing() -> None:
    nodes = cluster(node(A, {"CPU": 2}), node(B, {"CPU": 2}))
    assert place_bundles([ONE] * 3, "STRICT_PACK", nodes) is None
    assert place_bundles([ONE] * 3, "PACK", nodes) is not None


def test_placement_spread_uses_a_node_per_bundle_where_it_can() -> None:
    nodes = cluster(node(A, {"CPU": 4}), node(B, {"CPU": 4}), node(C, {"CPU": 4}))
    got = place_bundles([ONE] * 3, "SPREAD", nodes)
    assert got is not None
    assert sorted(got) == [A, B, C]
    more = place_bundles([ONE] * 5, "SPREAD", nodes)
    assert more is not None
    assert sorted(Counter(more).values()) == [1, 2, 2]  # evenly when reusing


def test_placement_strict_spread_needs_a_node_per_bundle() -> None:
    nodes = cluster(node(A, {"CPU": 4}), node(B, {"CPU": 4}))
    assert place_bundles([ONE] * 3, "STRICT_SPREAD", nodes) is None
    got = place_bundles([ONE] * 2, "STRICT_SPREAD", nodes)
    assert got is not None
    assert sorted(got) == [A, B]


def test_placement_places_big_bundles_first() -> None:
    nodes = cluster(node(A, {"CPU": 2}), node(B, {"CPU": 1}))
    got = place_bundles([ONE, {"CPU": 2}], "STRICT_SPREAD", nodes)
    assert got == [B, A]  # a first fit in the given order found nothing
    assert feasible_ever([ONE, {"CPU": 2}], "STRICT_SPREAD", nodes)


def test_placement_ignores_dead_nodes_and_busy_resources() -> None:
    nodes = cluster(node(A, {"CPU": 2}, {"CPU": 0}), dead(node(B, {"CPU": 8})))
    assert place_bundles([ONE], "PACK", nodes) is None
    assert feasible_ever([ONE], "PACK", nodes)  # once A is idle
    assert not feasible_ever([{"CPU": 3}], "PACK", nodes)  # B is dead
    assert place_bundles([], "PACK", nodes) == []


def test_placement_rejects_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown placement strategy 'PACKED'"):
        place_bundles([ONE], "PACKED", cluster(node(A, {"CPU": 1})))


def test_placement_bundle_resource_names_follow_ray() -> None:
    assert bundle_resource_names("ab", 1, {"CPU": 2.0}) == {
        "CPU_group_1_ab": 2.0,
        "CPU_group_ab": 2.0,
        "bundle_group_1_ab": 1000.0,
        "bundle_group_ab": 1000.0,
    }
    assert request_in_bundle("ab", -1, {"CPU": 1.0, "GPU": 0.0}) == {
        "CPU_group_ab": 1.0,
        "bundle_group_ab": 0.001,
    }
    assert request_in_bundle("ab", 1, {"CPU": 1.0}) == {
        "CPU_group_ab": 1.0,
        "bundle_group_ab": 0.001,
        "CPU_group_1_ab": 1.0,
        "bundle_group_1_ab": 0.001,
    }


bundle_lists = st.lists(
    st.fixed_dictionaries(
        {"CPU": st.sampled_from([0.0, 0.5, 1.0, 2.0])},
        optional={"GPU": st.sampled_from([0.5, 1.0])},
    ),
    min_size=1,
    max_size=5,
)
node_lists = st.lists(
    st.fixed_dictionaries(
        {"CPU": st.sampled_from([0.0, 1.0, 2.0, 3.0])},
        optional={"GPU": st.sampled_from([1.0, 2.0])},
    ),
    min_size=1,
    max_size=4,
)


@given(bundles=bundle_lists, totals=node_lists, strategy=st.sampled_from(STRATEGIES))
def test_placement_never_overcommits_a_node_and_keeps_its_strategy(
    bundles: list[dict[str, float]],
    totals: list[dict[str, float]],
    strategy: str,
) -> None:
    nodes = cluster(*(node(bytes([i]) * 20, t) for i, t in enumerate(totals)))
    got = place_bundles(bundles, strategy, nodes)
    if got is None:
        return
    assert len(got) == len(bundles)
    per_node: dict[bytes, dict[str, float]] = {}
    for n, b in zip(got, bundles, strict=True):
        add(per_node.setdefault(n, {}), b)
    for n, need in per_node.items():
        assert fits(need, nodes[n].available)
    if strategy == "STRICT_PACK":
        assert len(set(got)) == 1
    if strategy == "STRICT_SPREAD":
        assert len(set(got)) == len(got)
    assert feasible_ever(bundles, strategy, nodes)
