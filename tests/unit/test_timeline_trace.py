"""``ember timeline``'s trace: one complete event per attempt that ran, a row per worker."""

from __future__ import annotations

import json

from ember.cli.state_cmd import parse_filter, render
from ember.common.chrome_trace import chrome_trace
from ember.util.state.schemas import TaskState


def _task(i: int, worker: str, node: str, start: int | None, end: int | None) -> dict:
    return {
        "task_id": f"{i:032x}",
        "attempt_number": 0,
        "name": f"f{i}",
        "state": "FINISHED",
        "node_id": node,
        "worker_id": worker,
        "worker_pid": 100 + i,
        "start_time_ms": start,
        "end_time_ms": end,
    }


def test_one_complete_event_per_attempt_that_ran():
    tasks = [
        _task(1, "w1", "n1", 1000, 1500),
        _task(2, "w2", "n1", 1200, 1300),
        _task(3, "w1", "n1", 1600, 1700),
        _task(4, "w3", "n2", 1000, 2000),
        _task(5, "w3", "n2", None, None),  # still pending: no bar
    ]
    trace = json.loads(json.dumps(chrome_trace(tasks)))  # plain JSON
    bars = [e for e in trace if e["ph"] == "X"]
    assert len(bars) == 4
    first = bars[0]
    assert (first["ts"], first["dur"], first["name"]) == (
        1_000_000,
        500_000,
        "task::f1",
    )
    rows = {(e["pid"], e["tid"]) for e in bars}
    assert len(rows) == 3  # one row per worker
    assert len({e["pid"] for e in bars}) == 2  # one process per node
    names = {e["args"]["name"] for e in trace if e["ph"] == "M"}
    assert "Node n1" in names
    assert any(n.startswith("worker:w3") for n in names)


def test_cli_filters_and_formats():
    assert parse_filter("state=RUNNING") == ("state", "=", "RUNNING")
    assert parse_filter("name!=f") == ("name", "!=", "f")
    rows = [{"task_id": "ab", "state": "RUNNING", "name": "f"}]
    assert json.loads(render(rows, TaskState, "json", False)) == rows
    assert "RUNNING" in render(rows, TaskState, "yaml", False)
    table = render(rows, TaskState, "default", False)
    assert "TASK_ID" in table
    assert "Total: 1" in table
    assert render([], TaskState, "table", False) == "No resource in the cluster"
