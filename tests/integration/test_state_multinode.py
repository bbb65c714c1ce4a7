"""The state API on two nodes: each attempt names the node and worker that ran it."""

from __future__ import annotations

import os

import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.common.chrome_trace import chrome_trace
from ember.util.state import list_nodes, list_tasks, list_workers

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    monkeypatch.delenv(session.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False
    )
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    c.connect()
    yield c
    ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children())


def test_attempts_name_their_node_and_worker(two_nodes):
    @ember.remote(num_cpus=1, scheduling_strategy="SPREAD")
    def where():
        ctx = ember.get_runtime_context()
        return ctx.get_node_id(), ctx.get_worker_id(), os.getpid()

    ran = ember.get([where.remote() for _ in range(4)])
    assert len({node for node, _, _ in ran}) == 2

    def all_finished():
        rows = list_tasks(filters=[("name", "=", "where")], detail=True)
        return len(rows) == 4 and all(
            t.state == "FINISHED" and t.worker_pid for t in rows
        )

    assert wait_until(all_finished, 30), list_tasks()
    rows = list_tasks(filters=[("name", "=", "where")], detail=True)
    assert sorted((t.node_id, t.worker_id, t.worker_pid) for t in rows) == sorted(ran)
    assert {n.node_id for n in list_nodes()} == {node for node, _, _ in ran}
    workers = {w.worker_id: w for w in list_workers()}
    assert all(workers[wid].node_id == node for node, wid, _ in ran)

    trace = chrome_trace([t.asdict() for t in rows])
    bars = [e for e in trace if e["ph"] == "X"]
    assert len(bars) == 4
    assert len({b["pid"] for b in bars}) == 2
