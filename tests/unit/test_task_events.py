"""Task events: recording, draining, encoding (runtime) and the control service's table."""

from __future__ import annotations

import pytest

from ember.control.task_events import TaskEventTable
from ember.protocol.messages import TaskEvent, TaskEventsBatch, TaskSpec
from ember.runtime import task_events as te
from ember.util.state.schemas import TaskState


class _Links:
    worker_id = b"w" * 16
    node_id = b"n" * 16
    job_id = b"\x01\x00\x00\x00"
    control = None


def _sender() -> te.TaskEventSender:
    return te.TaskEventSender(_Links(), is_driver=True, node_ip="10.0.0.1", sup=None)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _empty_buffer():
    for buf in (te.EVENTS, te.SUBMITS, te.STATES, te.EXECS):
        del buf[:]
    yield
    for buf in (te.EVENTS, te.SUBMITS, te.STATES, te.EXECS):
        del buf[:]


def _spec(**kw) -> TaskSpec:
    base = {"task_id": b"t" * 16, "job_id": b"\x01\x00\x00\x00", "name": "f"}
    base.update(kw)
    return TaskSpec(**base)


def test_record_is_an_append_and_take_drains_in_place():
    # the hot path is one C call per event, into the list of its kind
    assert te.record == te.EVENTS.append
    assert te.record_state == te.STATES.append
    assert te.record_exec == te.EXECS.append
    assert te.record_submit == te.SUBMITS.append
    te.record_state((b"t", 0, te.RUNNING, 1.0))
    sender = _sender()
    first = sender.take(te.STATES)
    te.record_state((b"t", 0, te.FINISHED, 2.0))
    assert [e[2] for e in first] == [te.RUNNING]
    assert [e[2] for e in sender.take(te.STATES)] == [te.FINISHED]
    assert sender.take(te.STATES) == []


def test_a_full_buffer_drops_the_oldest_and_counts_them(monkeypatch):
    monkeypatch.setattr(te, "BUFFER_MAX", 3)
    for i in range(5):
        te.record_state((b"t", i, te.RUNNING, float(i)))
    sender = _sender()
    kept = sender.take(te.STATES)
    assert [e[1] for e in kept] == [2, 3, 4]
    assert sender.batch().dropped == 2


def test_a_submit_row_says_what_the_task_is():
    spec = _spec(
        actor_id=b"a" * 16,
        name="A.m",
        resources={"CPU": 1.0},
        strategy={"type": "placement_group", "pg_id": "ab" * 8},
    )
    (row,) = te.submit_rows([(spec, 0, 5.0, b"p" * 16)])
    table = TaskEventTable(10)
    table.add(TaskEventsBatch(worker_id=b"o" * 16, node_id=b"", pid=1, submits=[row]))
    (out,) = table.rows([], 10).rows
    assert out["state"] == "PENDING_ARGS_AVAIL"
    assert out["type"] == "ACTOR_TASK"
    assert out["name"] == out["func_or_class_name"] == "A.m"
    assert out["actor_id"] == (b"a" * 16).hex()
    assert out["parent_task_id"] == (b"p" * 16).hex()
    assert out["required_resources"] == {"CPU": 1.0}
    assert out["placement_group_id"] == "ab" * 8
    assert out["creation_time_ms"] == 5000


def test_a_task_submitted_by_a_driver_has_the_drivers_task_as_parent():
    (row,) = te.submit_rows([(_spec(), 0, 1.0, None)])
    assert row[6] == te.driver_task_id(b"\x01\x00\x00\x00")
    assert row[5] == b""  # a normal task


def test_failures_get_rays_error_types():
    from ember import exceptions

    try:
        raise ValueError("boom")
    except ValueError as exc:
        raised = exc
    ev = te.encode((te.EXEC, b"t", 0, te.FAILED_STATE, 1.0, raised))
    assert ev.error_type == "TASK_EXECUTION_EXCEPTION"
    assert ev.executed
    assert "ValueError: boom" in ev.error_message
    assert "Traceback" in ev.error_message
    assert te.error_type(exceptions.TaskCancelledError("x")) == "TASK_CANCELLED"
    assert te.error_type(exceptions.WorkerCrashedError("x")) == "WORKER_DIED"
    assert te.error_type(("OUT_OF_MEMORY", "killed")) == "OUT_OF_MEMORY"


def test_batch_says_who_sent_it():
    te.record_state((b"t", 0, te.RUNNING, 1.0))
    te.record((te.FAILED, b"t", 0, 2.0, ValueError("x")))
    batch = _sender().batch()
    assert batch.worker_type == "DRIVER"
    assert batch.ip == "10.0.0.1"
    assert batch.worker_id == b"w" * 16
    assert batch.job_id == b"\x01\x00\x00\x00"
    assert batch.states == [(b"t", 0, "RUNNING", 1.0)]
    assert [e.state for e in batch.events] == ["FAILED"]


# -- the control service's table ---------------------------------------------------


def _batch(
    *events: TaskEvent, worker: bytes = b"w" * 16, pid: int = 7
) -> TaskEventsBatch:
    return TaskEventsBatch(
        worker_id=worker, node_id=b"n" * 16, pid=pid, events=list(events)
    )


def _ev(state: str, t: float, attempt: int = 0, **kw) -> TaskEvent:
    return TaskEvent(task_id=b"t" * 16, attempt=attempt, state=state, time_s=t, **kw)


def test_owner_and_executor_events_merge_in_any_order():
    table = TaskEventTable(10)
    table.add(
        _batch(_ev("FINISHED", 3.0, executed=True), _ev("RUNNING", 2.0, executed=True))
    )
    table.add(
        _batch(
            _ev("PENDING_ARGS_AVAIL", 1.0, name="f", type="NORMAL_TASK"),
            worker=b"o" * 16,
        )
    )
    (row,) = table.rows([], 10).rows
    assert set(row) == TaskState.columns()  # Ray's columns, no more, no fewer
    assert row["state"] == "FINISHED"
    assert row["name"] == "f"
    assert row["worker_id"] == ("w" * 16).encode().hex()
    assert row["worker_pid"] == 7
    assert (row["creation_time_ms"], row["start_time_ms"], row["end_time_ms"]) == (
        1000,
        2000,
        3000,
    )
    assert [e["state"] for e in row["events"]] == [
        "PENDING_ARGS_AVAIL",
        "RUNNING",
        "FINISHED",
    ]


def test_a_retry_is_a_second_attempt_that_keeps_what_the_task_is():
    table = TaskEventTable(10)
    table.add(
        _batch(
            _ev("PENDING_ARGS_AVAIL", 1.0, name="f", type="NORMAL_TASK"),
            _ev("FAILED", 2.0, error_type="WORKER_DIED", error_message="died"),
            _ev("PENDING_NODE_ASSIGNMENT", 2.1, attempt=1),
        )
    )
    rows = table.rows([], 10).rows
    assert [(r["attempt_number"], r["state"], r["name"]) for r in rows] == [
        (0, "FAILED", "f"),
        (1, "PENDING_NODE_ASSIGNMENT", "f"),
    ]
    assert rows[0]["error_type"] == "WORKER_DIED"
    assert table.state_counts() == {
        ("FAILED", "f", False): 1,
        ("PENDING_NODE_ASSIGNMENT", "f", True): 1,
    }


def test_the_table_keeps_the_newest_and_counts_what_it_dropped():
    table = TaskEventTable(2)
    for i in range(3):
        table.add(
            _batch(
                TaskEvent(
                    task_id=bytes([i]) * 16, attempt=0, state="RUNNING", time_s=1.0
                )
            )
        )
    reply = table.rows([], 10)
    assert reply.total == 3
    assert reply.num_after_truncation == 2
    assert [r["task_id"] for r in reply.rows] == [
        bytes([1]).hex() * 16,
        bytes([2]).hex() * 16,
    ]
    table.add(TaskEventsBatch(worker_id=b"x", node_id=b"", pid=1, dropped=5))
    assert table.rows([], 10).total == 2 + 1 + 5


def test_filters_and_limit_are_applied_by_the_table():
    table = TaskEventTable(100)
    for i in range(5):
        state = "FINISHED" if i % 2 else "FAILED"
        table.add(
            _batch(
                TaskEvent(
                    task_id=bytes([i]) * 16,
                    attempt=0,
                    state=state,
                    time_s=1.0,
                    name=f"f{i % 2}",
                )
            )
        )
    reply = table.rows([("state", "=", "finished")], 1)
    assert len(reply.rows) == 1
    assert reply.num_filtered == 2
    assert table.rows([("name", "!=", "F1")], 10).num_filtered == 3


def test_ember_task_events_0_turns_recording_off():
    import os
    import subprocess
    import sys

    code = (
        "from ember.runtime import task_events as te\n"
        "te.record_state((b't', 0, te.RUNNING, 1.0))\n"
        "te.record_exec((b't', 0, te.RUNNING, 1.0))\n"
        "print(te.ENABLED, len(te.STATES) + len(te.EXECS))\n"
    )
    env = {**os.environ, "EMBER_TASK_EVENTS": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["False", "0"], out.stderr


def test_an_attempt_seen_by_owner_and_executor_is_one_row_off_the_wire():
    spec = _spec()
    tid = spec.task_id
    te.record_submit((spec, 0, 1.0, b""))
    te.record_state((tid, 0, te.PENDING_NODE_ASSIGNMENT, 1.1))
    te.record_state((tid, 0, te.SUBMITTED_TO_WORKER, 1.2))
    te.record_state((tid, 0, te.FINISHED, 1.5))
    owner = _sender().batch()
    te.record_exec((tid, 0, te.RUNNING, 1.3))
    te.record_exec((tid, 0, te.FINISHED, 1.4))
    executor = TaskEventsBatch(
        worker_id=b"x" * 16,
        node_id=b"m" * 16,
        pid=9,
        exec_states=_sender().batch().exec_states,
    )
    assert owner.events == []  # no message per event
    assert executor.events == []
    table = TaskEventTable(10)
    table.add(_off_the_wire(executor))  # in either order
    table.add(_off_the_wire(owner))
    assert not table.attempts  # nothing decoded yet
    (row,) = table.rows([], 10).rows
    assert row["state"] == "FINISHED"
    assert row["name"] == "f"
    assert row["worker_id"] == (b"x" * 16).hex()  # the executor's
    assert row["worker_pid"] == 9
    assert (row["creation_time_ms"], row["start_time_ms"], row["end_time_ms"]) == (
        1000,
        1300,
        1400,  # the executor's end, as it ran it
    )
    assert [e["state"] for e in row["events"]] == [
        "PENDING_ARGS_AVAIL",
        "PENDING_NODE_ASSIGNMENT",
        "SUBMITTED_TO_WORKER",
        "RUNNING",
        "FINISHED",
    ]


def test_a_failure_keeps_its_own_message_with_its_error():
    (msg,) = te.encode_all([(te.FAILED, b"t" * 16, 0, 2.0, ValueError("bad input"))])
    assert (msg.attempt, msg.state) == (0, te.FAILED_STATE)
    assert "bad input" in msg.error_message


def test_an_event_that_cannot_be_encoded_is_skipped_not_the_rest():
    msgs = te.encode_all(
        [(te.CREATE, object(), 1.0, te.RUNNING, None), (te.FAILED, b"t", 0, 2.0, "x")]
    )
    assert [m.state for m in msgs] == [te.FAILED_STATE]


def _off_the_wire(batch: TaskEventsBatch):
    import msgspec

    from ember.protocol.messages import TaskEventsBatchWire

    return msgspec.msgpack.decode(
        msgspec.msgpack.encode(batch), type=TaskEventsBatchWire
    )


def test_batches_off_the_wire_are_merged_when_the_table_is_read():
    table = TaskEventTable(10)
    table.add(
        _off_the_wire(
            _batch(_ev("PENDING_ARGS_AVAIL", 1.0, name="f", type="NORMAL_TASK"))
        )
    )
    table.add(_off_the_wire(_batch(_ev("FINISHED", 3.0, executed=True))))
    assert not table.attempts  # nothing decoded yet
    (row,) = table.rows([], 10).rows
    assert row["name"] == "f"
    assert row["state"] == "FINISHED"
    assert table.state_counts() == {("FINISHED", "f", False): 1}


def test_a_batch_whose_events_do_not_decode_is_dropped_and_the_rest_kept():
    import msgspec

    from ember.protocol.messages import TaskEventsBatchWire

    table = TaskEventTable(10)
    table.add(
        TaskEventsBatchWire(
            worker_id=b"x", node_id=b"", pid=1, events=msgspec.Raw(b"\x92\x01\xc1")
        )
    )
    table.add(_off_the_wire(_batch(_ev("RUNNING", 2.0, executed=True))))
    (row,) = table.rows([], 10).rows
    assert row["state"] == "RUNNING"
