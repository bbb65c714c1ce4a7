"""Label matching (``scheduler/labels.py``) and the ``node_label`` branch of
``scheduler/policy.decide``: pure, no processes."""

from __future__ import annotations

import click
import pytest
from hypothesis import given, strategies as st

from ember.api.call_builder import strategy_of
from ember.cli.node_options import parse_labels
from ember.common import node_labels
from ember.scheduler import labels
from ember.scheduler.policy import LOCAL, Decision, NodeView, decide
from ember.util.scheduling_strategies import (
    DoesNotExist,
    Exists,
    In,
    NodeLabelSchedulingStrategy,
    NotIn,
)

A, B, C = b"A" * 16, b"B" * 16, b"C" * 16
ONE = {"CPU": 1.0}


def node(
    node_id: bytes,
    tags: dict[str, str],
    free: float = 1.0,
    total: float = 1.0,
    alive: bool = True,
) -> NodeView:
    return NodeView(node_id, {"CPU": total}, {"CPU": free}, alive, tags)


def wire(hard=None, soft=None) -> dict[str, object]:
    return strategy_of(
        {"scheduling_strategy": NodeLabelSchedulingStrategy(hard, soft=soft)}
    )


def test_operators() -> None:
    tags = {"region": "us", "disk": "ssd"}
    assert labels.holds(("region", labels.IN, ("us", "eu")), tags)
    assert not labels.holds(("region", labels.IN, ("eu",)), tags)
    assert not labels.holds(("zone", labels.IN, ("us",)), tags)
    assert labels.holds(("region", labels.NOT_IN, ("eu",)), tags)
    assert labels.holds(("zone", labels.NOT_IN, ("eu",)), tags)
    assert not labels.holds(("region", labels.NOT_IN, ("us",)), tags)
    assert labels.holds(("disk", labels.EXISTS, ()), tags)
    assert not labels.holds(("gpu", labels.EXISTS, ()), tags)
    assert labels.holds(("gpu", labels.DOES_NOT_EXIST, ()), tags)
    assert not labels.holds(("disk", labels.DOES_NOT_EXIST, ()), tags)
    assert labels.matches([], {})
    with pytest.raises(ValueError):
        labels.holds(("k", "like", ()), tags)


def test_strategy_wire_form() -> None:
    s = wire(
        {"region": In("us", "eu"), "gpu": DoesNotExist()},
        soft={"disk": Exists(), "zone": NotIn("z1")},
    )
    assert s == {
        "type": "node_label",
        "hard": [["region", "in", ["us", "eu"]], ["gpu", "does_not_exist", []]],
        "soft": [["disk", "exists", []], ["zone", "not_in", ["z1"]]],
    }
    assert labels.from_wire(s["hard"]) == [
        ("region", "in", ("us", "eu")),
        ("gpu", "does_not_exist", ()),
    ]
    assert labels.describe(labels.from_wire(s["hard"])) == (
        "region in (us, eu), gpu does not exist"
    )
    for bad in ([["k", "in"]], [["k", "like", []]], [["k", "in", [1]]], "x"):
        with pytest.raises(ValueError):
            labels.from_wire(bad)


def test_hard_constraint_picks_a_matching_node() -> None:
    nodes = {A: node(A, {"region": "eu"}), B: node(B, {"region": "us"})}
    s = wire({"region": In("us")})
    assert decide(ONE, s, A, nodes, False, 0) == Decision("spill", B)
    assert decide(ONE, s, B, nodes, False, 0) == LOCAL


def test_no_matching_node_is_infeasible() -> None:
    nodes = {A: node(A, {"region": "eu"}), B: node(B, {"region": "us"}, total=0.5)}
    s = wire({"region": In("us")})
    assert decide(ONE, s, A, nodes, False, 0).kind == "infeasible"
    dead = {A: node(A, {"region": "us"}, alive=False), B: node(B, {})}
    assert decide(ONE, s, B, dead, False, 0).kind == "infeasible"


def test_busy_matching_node_is_waited_for() -> None:
    nodes = {A: node(A, {}), B: node(B, {"region": "us"}, free=0.0)}
    s = wire({"region": In("us")})
    assert decide(ONE, s, A, nodes, False, 0) == Decision("spill", B)
    assert decide(ONE, s, B, nodes, False, 0) == LOCAL


def test_soft_preference_and_fallback() -> None:
    nodes = {
        A: node(A, {"region": "us"}),
        B: node(B, {"region": "us", "disk": "ssd"}),
        C: node(C, {"region": "eu", "disk": "ssd"}),
    }
    s = wire({"region": In("us")}, soft={"disk": Exists()})
    assert decide(ONE, s, A, nodes, False, 0) == Decision("spill", B)
    busy = {**nodes, B: node(B, {"region": "us", "disk": "ssd"}, free=0.0)}
    assert decide(ONE, s, A, busy, False, 0) == LOCAL  # soft: fall back
    only_soft = wire(soft={"disk": Exists()})
    assert decide(ONE, only_soft, A, nodes, False, 0) == Decision("spill", B)
    none_soft = wire(soft={"gpu": Exists()})
    assert decide(ONE, none_soft, A, nodes, False, 0) == LOCAL


def test_spilled_request_checks_the_hard_constraint_here() -> None:
    nodes = {A: node(A, {"region": "us"}), B: node(B, {})}
    s = wire({"region": In("us")})
    assert decide(ONE, s, A, nodes, True, 0) == LOCAL
    assert decide(ONE, s, B, nodes, True, 0).kind == "infeasible"


_key = st.sampled_from(["region", "disk", "gpu"])
_value = st.sampled_from(["a", "b", "c"])
_tags = st.dictionaries(_key, _value, max_size=3)
_op = st.sampled_from(
    [
        lambda vs: In(*vs),
        lambda vs: NotIn(*vs),
        lambda vs: Exists(),
        lambda vs: DoesNotExist(),
    ]
)
_constraint = st.dictionaries(
    _key,
    st.builds(lambda make, vs: make(vs), _op, st.lists(_value, min_size=1, max_size=2)),
    min_size=1,
    max_size=2,
)


@given(
    tags=st.lists(_tags, min_size=1, max_size=4),
    free=st.lists(st.sampled_from([0.0, 1.0]), min_size=4, max_size=4),
    alive=st.lists(st.booleans(), min_size=4, max_size=4),
    hard=_constraint,
    soft=st.none() | _constraint,
    local=st.integers(0, 3),
)
def test_decision_respects_the_hard_constraint(
    tags, free, alive, hard, soft, local
) -> None:
    """Property: the chosen node is live, can hold the request and matches ``hard``;
    infeasible exactly when no such node exists."""
    ids = [bytes([65 + i]) * 16 for i in range(len(tags))]
    nodes = {
        n: node(n, t, free=f, alive=a)
        for n, t, f, a in zip(ids, tags, free, alive, strict=False)
    }
    here = ids[local % len(ids)]
    s = wire(hard, soft=soft)
    exprs = labels.from_wire(s["hard"])
    eligible = {
        n for n, v in nodes.items() if v.alive and labels.matches(exprs, v.labels)
    }
    d = decide(ONE, s, here, nodes, False, 0)
    if not eligible:
        assert d.kind == "infeasible"
        return
    target = here if d.kind == "local" else d.node_id
    assert d.kind in ("local", "spill")
    assert target in eligible
    ready = {n for n in eligible if nodes[n].available["CPU"] >= 1}
    if ready:
        assert target in ready
        soft_ready = {
            n
            for n in ready
            if soft and labels.matches(labels.from_wire(s["soft"]), nodes[n].labels)
        }
        if soft_ready:
            assert target in soft_ready


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        In()
    with pytest.raises(ValueError):
        NotIn("a", 1)
    with pytest.raises(ValueError):
        NodeLabelSchedulingStrategy({})
    with pytest.raises(ValueError):
        NodeLabelSchedulingStrategy({"k": "v"})
    with pytest.raises(ValueError):
        NodeLabelSchedulingStrategy(["k"])  # type: ignore[arg-type]
    assert NodeLabelSchedulingStrategy({}, soft={"k": Exists()}).hard == []


def test_node_labels_are_checked() -> None:
    assert node_labels.node_labels_error({"region": "us", "ex.com/disk": "ssd"}) is None
    assert node_labels.node_labels_error({"k": ""}) is None
    for bad in (
        {"-bad": "v"},
        {"k": "bad value"},
        {"a/b/c!": "v"},
        {node_labels.NODE_ID_KEY: "x"},
        {"k": 1},
    ):
        assert node_labels.node_labels_error(bad)


def test_parse_labels_takes_pairs_or_json() -> None:
    assert parse_labels(None) == {}
    assert parse_labels("") == {}
    assert parse_labels("region=us, disk=ssd") == {"region": "us", "disk": "ssd"}
    assert parse_labels('{"region": "us"}') == {"region": "us"}
    for bad in ("region", "a=b=c", '{"k": 1}', "{bad json", "k=bad value"):
        with pytest.raises(click.BadParameter):
            parse_labels(bad)
