"""The autoscaler's policy (pure): examples, then hypothesis properties."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ember.autoscaler.config import parse_config
from ember.autoscaler.policy import (
    ClusterState,
    Demand,
    GroupDemand,
    NodeState,
    decide,
)
from ember.scheduler.resources import fits


def config(**types_and_top):
    top = {k: v for k, v in types_and_top.items() if not isinstance(v, dict)}
    types = {k: v for k, v in types_and_top.items() if isinstance(v, dict)}
    return parse_config(
        {
            "max_workers": top.get("max_workers", 10),
            "upscaling_speed": top.get("upscaling_speed", 1.0),
            "idle_timeout_minutes": 1,
            "head_node_type": "head",
            "available_node_types": {
                "head": {"resources": {"CPU": 1}, "max_workers": 0},
                **types,
            },
        }
    )


HEAD = NodeState("head", None, {"CPU": 1}, {"CPU": 0}, 0.0, is_head=True)
CUSTOM = {"resources": {"CPU": 1, "custom": 1}, "max_workers": 3}
GPU = {"resources": {"CPU": 4, "GPU": 1}, "max_workers": 3}
CPU4 = {"resources": {"CPU": 4}, "max_workers": 3}


def worker(node_id, node_type, total, idle_s=0.0, available=None):
    return NodeState(
        node_id,
        node_type,
        total,
        dict(total) if available is None else available,
        idle_s,
    )


def test_a_burst_needing_a_custom_resource_starts_nodes_of_the_type_that_has_it():
    cfg = config(custom=CUSTOM, cpu4=CPU4)
    state = ClusterState(nodes=(HEAD,), demands=(Demand({"custom": 1}, 5),))
    d = decide(cfg, state)
    assert d.launch == {"custom": 3}  # one per task, up to the type's max_workers
    assert d.unplaced == [{"custom": 1}, {"custom": 1}]
    assert d.terminate == []


def test_the_cluster_max_workers_caps_every_type_together():
    cfg = config(custom=CUSTOM, cpu4=CPU4, max_workers=2)
    state = ClusterState(
        nodes=(HEAD,), demands=(Demand({"custom": 1}, 1), Demand({"CPU": 4}, 3))
    )
    d = decide(cfg, state)
    assert sum(d.launch.values()) == 2


def test_nodes_already_starting_take_demands_before_new_ones_are_added():
    cfg = config(custom=CUSTOM)
    state = ClusterState(
        nodes=(HEAD,), launching={"custom": 2}, demands=(Demand({"custom": 1}, 3),)
    )
    assert decide(cfg, state).launch == {"custom": 1}


def test_demands_that_fit_free_room_start_nothing_and_keep_that_node():
    cfg = config(custom=CUSTOM)
    idle = worker("w1", "custom", {"CPU": 1, "custom": 1}, idle_s=3600)
    d = decide(cfg, ClusterState(nodes=(HEAD, idle), demands=(Demand({"custom": 1}),)))
    assert d.launch == {}
    assert d.terminate == []


def test_min_workers_are_started_and_kept_even_when_idle():
    cfg = config(custom={**CUSTOM, "min_workers": 2})
    assert decide(cfg, ClusterState(nodes=(HEAD,))).launch == {"custom": 2}
    idle = tuple(
        worker(f"w{i}", "custom", {"CPU": 1, "custom": 1}, 3600) for i in range(3)
    )
    d = decide(cfg, ClusterState(nodes=(HEAD, *idle)))
    assert d.terminate == ["w0"]  # one above min_workers goes, longest idle first


def test_nodes_idle_past_their_timeout_go_and_busy_or_recent_ones_stay():
    cfg = config(custom={**CUSTOM, "idle_timeout_s": 10})
    nodes = (
        HEAD,
        worker("old", "custom", {"CPU": 1, "custom": 1}, idle_s=11),
        worker("new", "custom", {"CPU": 1, "custom": 1}, idle_s=9),
        worker("busy", "custom", {"CPU": 1, "custom": 1}, 0, {"CPU": 0, "custom": 0}),
    )
    assert decide(cfg, ClusterState(nodes=nodes)).terminate == ["old"]


def test_nodes_the_autoscaler_did_not_start_are_never_removed():
    cfg = config(custom=CUSTOM)
    by_hand = worker("hand", None, {"CPU": 1, "custom": 1}, idle_s=10**6)
    assert decide(cfg, ClusterState(nodes=(HEAD, by_hand))).terminate == []


def test_work_that_asks_for_no_gpu_does_not_start_gpu_nodes():
    cfg = config(gpu=GPU, cpu4=CPU4)
    d = decide(cfg, ClusterState(nodes=(HEAD,), demands=(Demand({"CPU": 2}, 2),)))
    assert d.launch == {"cpu4": 1}
    d = decide(cfg, ClusterState(nodes=(HEAD,), demands=(Demand({"GPU": 1}, 1),)))
    assert d.launch == {"gpu": 1}


def test_shapes_no_node_type_can_hold_start_nothing_and_are_reported():
    cfg = config(custom=CUSTOM)
    d = decide(cfg, ClusterState(nodes=(HEAD,), demands=(Demand({"TPU": 1}, 2),)))
    assert d.launch == {}
    assert d.unplaced == [{"TPU": 1}, {"TPU": 1}]


def test_strict_spread_groups_need_one_node_per_bundle_strict_pack_one_for_all():
    cfg = config(cpu4=CPU4)
    spread = GroupDemand(({"CPU": 1},) * 3, "STRICT_SPREAD", "g1")
    assert decide(cfg, ClusterState(nodes=(HEAD,), groups=(spread,))).launch == {
        "cpu4": 3
    }
    pack = GroupDemand(({"CPU": 2},) * 2, "STRICT_PACK", "g2")
    assert decide(cfg, ClusterState(nodes=(HEAD,), groups=(pack,))).launch == {
        "cpu4": 1
    }


def test_upscaling_speed_bounds_how_many_nodes_start_at_once():
    cfg = config(cpu={"resources": {"CPU": 1}, "max_workers": 100}, max_workers=100)
    demands = (Demand({"CPU": 1}, 50),)
    first = decide(cfg, ClusterState(nodes=(HEAD,), demands=demands))
    assert first.launch == {"cpu": 5}  # Ray's floor: five at a time
    running = tuple(
        worker(f"w{i}", "cpu", {"CPU": 1}, 0, {"CPU": 0}) for i in range(10)
    )
    more = decide(cfg, ClusterState(nodes=(HEAD, *running), demands=demands))
    assert more.launch == {"cpu": 10}  # speed 1.0: as many as run


def test_request_resources_adds_room_against_totals_and_ignores_upscaling_speed():
    cfg = config(cpu={"resources": {"CPU": 1}, "max_workers": 20}, max_workers=20)
    busy = worker("w0", "cpu", {"CPU": 1}, 0, {"CPU": 0})
    state = ClusterState(nodes=(HEAD, busy), requested=({"CPU": 1},) * 12)
    # 12 CPUs asked; the head and w0 have 2 in total (busy or not): 10 more
    assert decide(cfg, state).launch == {"cpu": 10}


def test_request_resources_keeps_idle_nodes_it_needs():
    cfg = config(custom={**CUSTOM, "idle_timeout_s": 1})
    idle = tuple(
        worker(f"w{i}", "custom", {"CPU": 1, "custom": 1}, 100) for i in range(2)
    )
    state = ClusterState(nodes=(HEAD, *idle), requested=({"custom": 1},))
    assert decide(cfg, state).terminate == ["w0"]  # w1 holds the requested bundle
    assert decide(cfg, ClusterState(nodes=(HEAD, *idle))).terminate == ["w0", "w1"]


# -- properties ------------------------------------------------------------------------

amounts = st.sampled_from([0.5, 1.0, 2.0, 4.0])
kinds = st.sampled_from(["CPU", "GPU", "custom"])
shapes = st.dictionaries(kinds, amounts, min_size=1, max_size=2)


@st.composite
def scenarios(draw):
    ntypes = draw(st.integers(1, 3))
    types = {}
    for i in range(ntypes):
        low = draw(st.integers(0, 2))
        types[f"t{i}"] = {
            "resources": draw(st.dictionaries(kinds, amounts, min_size=1, max_size=3)),
            "min_workers": low,
            "max_workers": draw(st.integers(low, 4)),
            "idle_timeout_s": draw(st.sampled_from([0, 5, 60])),
        }
    cluster_max = draw(st.integers(sum(t["min_workers"] for t in types.values()), 8))
    cfg = parse_config(
        {
            "max_workers": cluster_max,
            "upscaling_speed": draw(st.sampled_from([0.5, 1.0, 100.0])),
            "head_node_type": "head",
            "available_node_types": {"head": {"resources": {"CPU": 1}}, **types},
        }
    )
    # a cluster within the limits: per type at most max_workers, in all at most max,
    # with room left for the min_workers not running yet
    nodes = [HEAD]
    launching = {}
    room = cluster_max
    reserve = sum(t.min_workers for t in cfg.worker_types.values())
    for name, t in sorted(cfg.worker_types.items()):
        reserve -= t.min_workers
        n = draw(st.integers(0, min(t.max_workers, room - reserve)))
        starting = draw(st.integers(0, n))
        room -= max(n, t.min_workers)
        if starting:
            launching[name] = starting
        for j in range(n - starting):
            busy = draw(st.booleans())
            total = dict(t.resources)
            nodes.append(
                NodeState(
                    f"{name}-{j}",
                    name,
                    total,
                    dict.fromkeys(total, 0.0) if busy else dict(total),
                    0.0 if busy else draw(st.sampled_from([0.0, 1.0, 30.0, 600.0])),
                )
            )
    demands = tuple(
        Demand(s, c)
        for s, c in draw(st.lists(st.tuples(shapes, st.integers(1, 3)), max_size=4))
    )
    requested = tuple(draw(st.lists(shapes, max_size=3)))
    return cfg, ClusterState(tuple(nodes), launching, demands, (), requested)


def after(cfg, state, d):
    """Per type: nodes running + starting + launched - removed."""
    out = dict.fromkeys(cfg.worker_types, 0)
    for n in state.nodes:
        if n.node_type in out and n.node_id not in d.terminate:
            out[n.node_type] += 1
    for t, k in {**state.launching}.items():
        out[t] += k
    for t, k in d.launch.items():
        out[t] += k
    return out


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_never_above_max_workers(case):
    cfg, state = case
    d = decide(cfg, state)
    counts = after(cfg, state, d)
    assert sum(counts.values()) <= cfg.max_workers
    for t, n in counts.items():
        assert n <= cfg.worker_types[t].max_workers


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_never_below_min_workers(case):
    cfg, state = case
    counts = after(cfg, state, decide(cfg, state))
    for t, n in counts.items():
        assert n >= cfg.worker_types[t].min_workers


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_removes_only_nodes_idle_past_their_timeout(case):
    cfg, state = case
    by_id = {n.node_id: n for n in state.nodes}
    for node_id in decide(cfg, state).terminate:
        n = by_id[node_id]
        assert not n.is_head
        assert n.node_type in cfg.worker_types
        assert n.available == n.total  # idle: nothing taken
        assert n.idle_s > 0
        assert n.idle_s >= cfg.worker_types[n.node_type].idle_timeout_s


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_satisfies_every_feasible_demand_when_the_limits_allow(case):
    cfg, state = case
    roomy = parse_config(
        {
            **cfg.raw,
            "max_workers": 1000,
            "upscaling_speed": 1000.0,
            "available_node_types": {
                name: {**body, "max_workers": 1000}
                for name, body in cfg.raw["available_node_types"].items()
            },
        }
    )
    d = decide(roomy, state)
    for shape in d.unplaced:
        assert not any(fits(shape, t.resources) for t in roomy.worker_types.values())
    # independent check: what was started covers the feasible demand in total
    feasible = [
        dict(x.resources)
        for x in state.demands
        for _ in range(x.count)
        if any(
            fits(dict(x.resources), t.resources) for t in roomy.worker_types.values()
        )
    ]
    room: dict[str, float] = {}
    for n in state.nodes:
        for k, v in n.available.items():
            room[k] = room.get(k, 0) + v
    for t, k in {**state.launching}.items():
        for r, v in roomy.node_types[t].resources.items():
            room[r] = room.get(r, 0) + v * k
    for t, k in d.launch.items():
        for r, v in roomy.node_types[t].resources.items():
            room[r] = room.get(r, 0) + v * k
    for kind in {k for s in feasible for k in s}:
        assert sum(s.get(kind, 0) for s in feasible) <= room.get(kind, 0) + 1e-9
