"""node.drain decides in one step: refuse while anything could be lost, else stop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS

import pytest

from ember.node.drain import NodeDrainingError, drain_node
from ember.protocol.messages import DrainNodeRequest


class Ledger:
    def __init__(self, reserved: float) -> None:
        self.reserved = reserved

    def totals(self):
        return {"CPU": 2.0, "CPU_group_ab": 1.0}

    def available(self):
        return {"CPU": 2.0 - self.reserved, "CPU_group_ab": 1.0}


def parts(granted=(), pending=(), objects=0, spilled_files=0, reserved=0.0):
    leases = NS(granted=dict.fromkeys(granted), pending=list(pending))
    return (
        leases,
        Ledger(reserved),
        NS(objects=objects),
        NS(files=spilled_files, bytes_on_disk=0),
    )


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ({"granted": [1]}, "lease(s) granted"),
        ({"pending": ["p"]}, "lease request(s) wait"),
        ({"objects": 2}, "holds 2 object(s)"),
        ({"spilled_files": 1}, "spilled objects"),
        ({"reserved": 1.0}, "reserved here (CPU"),
    ],
)
def test_a_busy_node_refuses_and_keeps_serving(state, why):
    async def go():
        handlers = {"node.request_worker_lease": "real"}
        stopped = []
        reply = drain_node(
            DrainNodeRequest(node_id=b"n"),
            *parts(**state),
            handlers,
            lambda: stopped.append(1),
        )
        await asyncio.sleep(0)  # let a scheduled stop run, if one was scheduled
        return reply, handlers, stopped

    reply, handlers, stopped = asyncio.run(go())
    assert not reply.accepted
    assert why in reply.rejection
    assert handlers["node.request_worker_lease"] == "real"
    assert stopped == []


def test_an_idle_node_accepts_refuses_new_leases_and_stops():
    async def go():
        handlers = {"node.request_worker_lease": "real"}
        stop = asyncio.Event()
        reply = drain_node(
            DrainNodeRequest(node_id=b"n", reason="idle"), *parts(), handlers, stop.set
        )
        assert not stop.is_set()  # only after the reply is written
        await asyncio.wait_for(stop.wait(), 10)
        return reply, handlers

    reply, handlers = asyncio.run(go())
    assert reply.accepted
    with pytest.raises(NodeDrainingError):
        handlers["node.request_worker_lease"](None, None, None)
