"""The control path's costs per node stay flat as the cluster grows (issue 17).

Each test counts what the old behaviour cost in messages or records (never
wall time): full node lists on every refresh, one membership notice per
registration to every node, frames sent to connections mid-handshake.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import stat
from typing import Any

import pytest

from ember.common.aio import Supervisor
from ember.control import profiling
from ember.control.nodes import CLUSTER_CHANGED_WINDOW_S, NodeTable
from ember.control.service import ControlService
from ember.node.cluster_view import ClusterView
from ember.protocol.messages import (
    GetNodesRequest,
    HeartbeatRequest,
    NodeInfo,
    RegisterNodeRequest,
)
from ember.scheduler.ledger import ResourceLedger

TOKEN = b"s" * 32
N = 300


class FakeConn:
    """What the control service uses of a node's connection: notify, close hooks."""

    def __init__(self, authenticated: bool = True) -> None:
        self.notified: list[str] = []
        self.state: dict[str, Any] = {}
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if authenticated:
            self.ready.set_result(None)

    def notify(self, method: str, req: Any, bufs: Any = ()) -> None:
        self.notified.append(method)

    def is_closed(self) -> bool:
        return False

    def on_close(self, cb: Any) -> None:
        pass

    def abort(self) -> None:
        pass


class Link:
    """A node daemon's control link, answered by the service's own handler."""

    def __init__(self, svc: ControlService) -> None:
        self.svc = svc

    def is_closed(self) -> bool:
        return False

    async def call(self, method: str, req: Any, bufs: Any = (), timeout: Any = None):
        assert method == "control.get_nodes"
        return self.svc.get_nodes(None, req, []), []


def info(i: int) -> NodeInfo:
    return NodeInfo(
        node_id=i.to_bytes(16, "big"),
        address=f"tcp:127.0.0.1:{10000 + i}",
        unix="",
        ip="127.0.0.1",
        resources={"CPU": 4.0},
        available={"CPU": 4.0},
    )


def beat(i: int, cpu: float = 4.0) -> HeartbeatRequest:
    return HeartbeatRequest(
        node_id=i.to_bytes(16, "big"), available={"CPU": cpu}, total={"CPU": 4.0}
    )


async def _service(tmp_path: Any) -> tuple[ControlService, list[FakeConn]]:
    svc = ControlService(TOKEN, str(tmp_path))
    conns = []
    for i in range(N):
        c = FakeConn()
        conns.append(c)
        svc.register_node(c, RegisterNodeRequest(info=info(i)), [])  # type: ignore[arg-type]
    return svc, conns


async def _wait_for(cond: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.005)


def test_refreshes_of_an_idle_cluster_carry_no_records(tmp_path):
    """A view that names its version gets the changes only (was: every node, each time)."""

    async def main() -> None:
        svc, _ = await _service(tmp_path)
        view = ClusterView(info(0).node_id, Supervisor("test"))
        view.control = Link(svc)  # type: ignore[assignment]
        await view.refresh()
        assert len(view.nodes) == N
        assert view.records_received == N
        for _ in range(3):  # every node beats with the same figures: nothing changed
            for i in range(N):
                svc.nodes.heartbeat(beat(i), 0.0)
            await view.refresh()
        assert view.records_received == N  # the full-list protocol: 4 * N
        svc.nodes.heartbeat(beat(7, cpu=1.0), 0.0)
        await view.refresh()
        assert view.records_received == N + 1
        assert view.nodes[info(7).node_id].available == {"CPU": 1.0}
        svc.server.close()

    asyncio.run(main())


def test_a_view_of_another_numbering_gets_every_record(tmp_path):
    """A restarted control service numbers anew: an old view is answered in full."""

    async def main() -> None:
        svc, _ = await _service(tmp_path)
        nodes, delta = svc.nodes.changed_since(5, b"other view")
        assert not delta
        assert len(nodes) == N
        reply = svc.get_nodes(None, GetNodesRequest(), [])  # what an Empty decodes to
        assert not reply.delta
        assert len(reply.nodes) == N
        again = svc.get_nodes(
            None, GetNodesRequest(since=reply.version, view_id=reply.view_id), []
        )
        assert again.delta
        assert again.nodes == []
        svc.nodes.lost(info(3).node_id, svc.nodes.conns[info(3).node_id])
        dead = svc.get_nodes(
            None, GetNodesRequest(since=reply.version, view_id=reply.view_id), []
        )
        assert [n.node_id for n in dead.nodes] == [info(3).node_id]
        assert not dead.nodes[0].alive
        svc.server.close()

    asyncio.run(main())


def test_what_was_spilled_to_a_node_counts_until_the_next_refresh(tmp_path):
    async def main() -> None:
        svc, _ = await _service(tmp_path)
        view = ClusterView(info(0).node_id, Supervisor("test"))
        view.control = Link(svc)  # type: ignore[assignment]
        await view.refresh()
        target = info(9).node_id
        view.count_spilled(target, {"CPU": 3.0})
        views = view.views(ResourceLedger({"CPU": 4.0}))
        assert views[target].available == {"CPU": 1.0}
        assert svc.nodes.nodes[target].available == {"CPU": 4.0}  # not the service's
        await view.refresh()  # nothing changed there: the node's report comes back
        assert view.nodes[target].available == {"CPU": 4.0}
        svc.server.close()

    asyncio.run(main())


def test_a_burst_of_registrations_sends_one_notice_per_window(tmp_path):
    """N nodes joining at once: each node hears O(1) notices (was O(N) each, N^2 in all)."""

    async def main() -> None:
        svc, conns = await _service(tmp_path)
        # the first went out at once; the other N - 1 changes share one at the window's end
        await _wait_for(lambda: svc.nodes.notices_sent == 2)
        sent = sum(len(c.notified) for c in conns)
        assert (
            sent < 2 * N
        )  # one notice per registration to every node: N * (N + 1) / 2
        assert all(c.notified[-1] == "node.cluster_changed" for c in conns)
        # an isolated change later goes out at once (leading edge)
        loop = asyncio.get_running_loop()
        await _wait_for(
            lambda: loop.time() - svc.nodes._last_notice > CLUSTER_CHANGED_WINDOW_S
        )
        svc.nodes.tell_cluster_changed()
        assert svc.nodes.notices_sent == 3
        svc.server.close()

    asyncio.run(main())


def test_node_death_is_not_sent_to_connections_in_their_handshake(tmp_path):
    """A frame before WELCOME is a protocol error that closes the connection."""

    async def main() -> None:
        svc = ControlService(TOKEN, str(tmp_path))
        ready, pending = FakeConn(), FakeConn(authenticated=False)
        svc.server.connections.update([ready, pending])  # type: ignore[list-item]
        svc._node_died(b"n" * 16, "gone")
        assert ready.notified == ["worker.node_died"]
        assert pending.notified == []
        svc.server.connections.clear()
        svc.server.close()

    asyncio.run(main())


def test_prometheus_targets_follow_the_coalesced_notices(tmp_path):
    async def main() -> None:
        svc, _ = await _service(tmp_path)
        writes = []
        svc.targets.update = lambda nodes: writes.append(len(list(nodes)))  # type: ignore[method-assign]
        await _wait_for(lambda: svc.nodes.notices_sent == 2)
        assert writes == [N]  # the trailing notice wrote every node, once
        svc.server.close()

    asyncio.run(main())


def test_the_profile_knob_is_off_by_default_and_writes_a_private_file(
    tmp_path, monkeypatch
):
    monkeypatch.delenv(profiling.PROFILE_ENV, raising=False)
    assert profiling.start() is None
    path = tmp_path / "control.prof"
    monkeypatch.setenv(profiling.PROFILE_ENV, str(path))
    started = profiling.start()
    assert started is not None
    sum(range(1000))
    profiling.stop(started)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert pstats.Stats(str(path)).total_calls > 0


@pytest.mark.parametrize("n", [10, 1000])
def test_changed_since_walks_only_the_changes(n):
    """The cost of a delta is the changes, not the table: counted by records."""
    table = NodeTable()

    class C:
        def is_closed(self) -> bool:
            return True

        def abort(self) -> None:
            pass

    for i in range(n):
        table.register(info(i), C(), 0.0)  # type: ignore[arg-type]
    v = table.version
    table.heartbeat(beat(1, cpu=2.0), 0.0)
    table.heartbeat(beat(1, cpu=3.0), 0.0)
    nodes, delta = table.changed_since(v, table.view_id)
    assert delta
    assert [x.node_id for x in nodes] == [info(1).node_id]


def test_a_spilled_request_that_finds_its_node_full_goes_on_to_one_with_room():
    from ember.node.leases import spill_on
    from ember.protocol.messages import LeaseRequest

    view = ClusterView(info(0).node_id, Supervisor("test"))
    full, dead, roomy = info(1), info(2), info(3)
    full.available = {"CPU": 0.0}
    dead.alive = False
    view.nodes = {n.node_id: n for n in (info(0), full, dead, roomy)}
    assert view.node_with_room({"CPU": 2.0}) == roomy.node_id  # not itself, full, dead
    assert view.node_with_room({"CPU": 8.0}) is None
    plain = LeaseRequest(resources={"CPU": 1.0}, job_id=b"j", spilled=True)
    assert spill_on(plain)
    assert not spill_on(LeaseRequest(resources={"CPU": 1.0}, job_id=b"j"))
    for strategy in ({"type": "SPREAD"}, {"type": "node_affinity"}, {"locality": "ab"}):
        req = LeaseRequest(
            resources={"CPU": 1.0}, job_id=b"j", spilled=True, strategy=strategy
        )
        assert not spill_on(req), strategy
