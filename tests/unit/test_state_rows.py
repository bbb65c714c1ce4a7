"""The control service's state rows: workers seen from their batches, and Ray's columns."""

from __future__ import annotations

from ember.control.actor_record import ActorRecord
from ember.control.state_rows import (
    StateQueries,
    WorkersSeen,
    actor_row,
    job_row,
    node_row,
    placement_group_row,
)
from ember.control.task_events import TaskEventTable
from ember.protocol.messages import (
    ActorSpec,
    ListStateRequest,
    NodeInfo,
    PlacementGroupInfo,
    StateFilter,
    TaskEventsBatch,
)
from ember.util.state.schemas import (
    ActorState,
    JobState,
    NodeState,
    PlacementGroupState,
    WorkerState,
)


class _Conn:
    def __init__(self) -> None:
        self.closers: list = []

    def on_close(self, fn) -> None:
        self.closers.append(fn)

    def close(self) -> None:
        for fn in self.closers:
            fn(self)


def _batch(wid: bytes, kind: str = "WORKER") -> TaskEventsBatch:
    return TaskEventsBatch(
        worker_id=wid, node_id=b"n" * 16, pid=42, ip="1.2.3.4", worker_type=kind
    )


def test_a_worker_is_alive_while_its_connection_is_open():
    seen = WorkersSeen()
    conn = _Conn()
    seen.saw(conn, _batch(b"w" * 16))  # type: ignore[arg-type]
    seen.saw(conn, _batch(b"w" * 16))  # type: ignore[arg-type]
    (w,) = seen.workers.values()
    assert w["is_alive"]
    assert w["pid"] == 42
    assert w["worker_type"] == "WORKER"
    assert len(conn.closers) == 1  # watched once per connection
    conn.close()
    assert not w["is_alive"]
    assert w["end_time_ms"] is not None
    assert set(w) - {"job_id"} == WorkerState.columns()


def test_list_state_filters_rows_and_counts():
    queries = StateQueries(
        TaskEventTable(10),
        {"nodes": lambda: [{"state": "ALIVE"}, {"state": "DEAD"}, {"state": "ALIVE"}]},
        WorkersSeen(),
    )
    req = ListStateRequest(
        resource="nodes",
        filters=[StateFilter(key="state", predicate="=", value="alive")],
        limit=1,
    )
    reply = queries.list_state(None, req, [])  # type: ignore[arg-type]
    assert reply.rows == [{"state": "ALIVE"}]
    assert (reply.total, reply.num_filtered) == (3, 2)


def test_rows_have_exactly_rays_columns():
    spec = ActorSpec(
        actor_id=b"a" * 16,
        job_id=b"\x01\x00\x00\x00",
        class_key=b"k",
        class_name="A",
        args=b"",
    )
    rec = ActorRecord(spec)
    row = actor_row(rec)
    assert set(row) == ActorState.columns()
    assert row["state"] == "PENDING_CREATION"
    assert row["node_id"] is None
    node = NodeInfo(
        node_id=b"n" * 16,
        address="tcp:x:1",
        unix="",
        ip="1.2.3.4",
        resources={"CPU": 2.0},
    )
    assert set(node_row(node)) == NodeState.columns()
    pg = PlacementGroupInfo(pg_id=b"p" * 16, bundles=[{"CPU": 1.0}], strategy="PACK")
    prow = placement_group_row(pg)
    assert set(prow) == PlacementGroupState.columns()
    assert prow["bundles"][0]["unit_resources"] == {"CPU": 1.0}
    job = job_row(b"\x01\x00\x00\x00", {"alive": True, "pid": 9}, WorkersSeen())
    assert set(job) == JobState.columns()
    assert (job["job_id"], job["status"], job["type"]) == (
        "01000000",
        "RUNNING",
        "DRIVER",
    )
