"""The autoscaler's shell between a control link and a provider that keep state in memory.

The control link answers the four calls a tick makes from a list of
NodeInfo records; the provider keeps the nodes it "started". The real
processes are in tests/integration/test_autoscaler.py.
"""

from __future__ import annotations

import asyncio
import json

from ember.autoscaler.config import (
    LAUNCH_LABEL,
    NODE_TYPE_LABEL,
    STATUS_KEY,
    parse_config,
)
from ember.autoscaler.monitor import Autoscaler
from ember.autoscaler.provider import ProviderNode
from ember.protocol.messages import (
    DrainNodeReply,
    GetClusterStatusReply,
    KvGetReply,
    ListPlacementGroupsReply,
    NodeInfo,
    ResourceDemand,
)

CFG = parse_config(
    {
        "max_workers": 3,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 1}},
            "w": {
                "resources": {"CPU": 1, "custom": 1},
                "max_workers": 3,
                "idle_timeout_s": 10,
            },
        },
    }
)
HEAD = NodeInfo(
    node_id=b"\x00" * 4, address="", unix="", ip="", resources={"CPU": 1}, is_head=True
)


class Control:
    def __init__(self) -> None:
        self.nodes = [HEAD]
        self.demands: list[ResourceDemand] = []
        self.kv: dict[bytes, bytes] = {}
        self.drains: list[bytes] = []
        self.refuse = ""

    async def call(self, method, req, *args, **kw):
        if method == "control.get_cluster_status":
            return GetClusterStatusReply(
                nodes=list(self.nodes), demands=self.demands
            ), []
        if method == "control.list_placement_groups":
            return ListPlacementGroupsReply(groups=[]), []
        if method == "control.kv_get":
            return KvGetReply(value=self.kv.get(req.key)), []
        if method == "control.kv_put":
            self.kv[req.key] = req.value
            return None, []
        if method == "control.drain_node":
            self.drains.append(req.node_id)
            return DrainNodeReply(accepted=not self.refuse, rejection=self.refuse), []
        raise AssertionError(method)


class Provider:
    def __init__(self) -> None:
        self.running: dict[str, ProviderNode] = {}
        self.stopped: list[str] = []
        self.now = 1000.0

    def nodes(self):
        return list(self.running.values())

    def launch(self, node_type, count):
        ids = []
        for _ in range(count):
            pid = f"{node_type.name}-{len(self.running) + len(self.stopped)}"
            self.running[pid] = ProviderNode(pid, node_type.name, self.now)
            ids.append(pid)
        return ids

    def terminate(self, provider_id):
        self.running.pop(provider_id, None)
        self.stopped.append(provider_id)

    def terminate_all(self):
        for p in list(self.running):
            self.terminate(p)


def registered(pid: str, n: int, busy: bool = False) -> NodeInfo:
    total = {"CPU": 1.0, "custom": 1.0}
    return NodeInfo(
        node_id=bytes([n]) * 4,
        address="",
        unix="",
        ip="",
        resources=total,
        available={"CPU": 0.0, "custom": 0.0} if busy else dict(total),
        labels={NODE_TYPE_LABEL: "w", LAUNCH_LABEL: pid},
    )


def make():
    control, provider = Control(), Provider()
    clock = [0.0]
    scaler = Autoscaler(
        CFG,
        provider,
        control,
        launch_timeout_s=60,
        clock=lambda: clock[0],
        wall=lambda: provider.now,
    )
    return scaler, control, provider, clock


def test_demand_starts_nodes_once_and_waits_for_them_to_register():
    scaler, control, provider, _ = make()
    control.demands = [ResourceDemand(resources={"custom": 1}, count=2)]
    asyncio.run(scaler.tick())
    assert sorted(provider.running) == ["w-0", "w-1"]
    asyncio.run(scaler.tick())  # still starting: counted, nothing more started
    assert len(provider.running) == 2
    report = json.loads(control.kv[STATUS_KEY])
    assert report["launching"] == {"w": 2}


def test_a_node_that_never_registers_is_stopped_after_the_launch_timeout():
    scaler, control, provider, _ = make()
    control.demands = [ResourceDemand(resources={"custom": 1})]
    asyncio.run(scaler.tick())
    provider.now += 61
    control.demands = []
    asyncio.run(scaler.tick())
    assert provider.stopped == ["w-0"]
    assert not provider.running


def test_an_idle_node_is_drained_then_stopped_and_a_refusal_keeps_it():
    scaler, control, provider, clock = make()
    control.demands = [ResourceDemand(resources={"custom": 1})]
    asyncio.run(scaler.tick())
    control.demands = []
    control.nodes.append(registered("w-0", 1, busy=True))
    asyncio.run(scaler.tick())
    control.nodes[1] = registered("w-0", 1)  # its work is done: idle from now
    asyncio.run(scaler.tick())
    clock[0] += 11
    control.refuse = "it holds 1 object(s)"
    asyncio.run(scaler.tick())
    assert control.drains == [b"\x01" * 4]
    assert not provider.stopped
    events = json.loads(control.kv[STATUS_KEY])["events"]
    assert events[-1]["kept"] == "01010101"
    assert "object" in events[-1]["why"]
    asyncio.run(scaler.tick())  # the refusal restarted its idle clock
    assert len(control.drains) == 1
    clock[0] += 11
    control.refuse = ""
    asyncio.run(scaler.tick())  # idle for 11 s since the refusal: drained, stopped
    assert provider.stopped == ["w-0"]
    assert len(control.drains) == 2


def test_nodes_not_started_by_the_provider_are_left_alone():
    scaler, control, provider, clock = make()
    control.nodes.append(registered("by-hand", 7))
    asyncio.run(scaler.tick())
    clock[0] += 3600
    asyncio.run(scaler.tick())
    assert control.drains == []
    assert provider.stopped == []
