"""The dashboard API's rows, made from the control service's records."""

from __future__ import annotations

import pytest
from tests.unit.test_dashboard_history import reading

from ember.dashboard import rows
from ember.dashboard.api_errors import BadRequest
from ember.dashboard.history import point
from ember.dashboard.logs_api import check_filename
from ember.protocol.messages import NodeInfo, PlacementGroupInfo, ProcessStats


def node(alive=True, **kw):
    base = {
        "node_id": bytes.fromhex("ab" * 28),
        "address": "tcp:10.0.0.1:1",
        "unix": "",
        "ip": "10.0.0.1",
        "resources": {"CPU": 4.0, "CPU_group_x": 1.0},
        "available": {"CPU": 1.0},
        "alive": alive,
        "is_head": True,
        "hostname": "box",
        "object_store_bytes": 100,
        "start_time": 1700000000.5,
        "death_reason": "" if alive else "it missed heartbeats",
    }
    base.update(kw)
    return NodeInfo(**base)


def test_node_row_joins_the_node_and_its_last_sample():
    p = point(None, reading(1.0, busy=1.0, total=4.0))
    r = rows.node_row(node(), p, num_workers=3)
    assert r["node_id"] == "ab" * 28
    assert r["state"] == "ALIVE"
    assert r["is_head"]
    assert r["hostname"] == "box"
    assert r["cpu_percent"] == 25.0
    assert r["object_store_total"] == 100 << 20
    assert r["start_time"] == 1700000000500
    assert r["num_workers"] == 3
    assert r["death_reason"] is None


def test_dead_node_row_names_why_and_has_nothing_available():
    r = rows.node_row(node(alive=False), None, 0)
    assert r["state"] == "DEAD"
    assert r["death_reason"] == "it missed heartbeats"
    assert r["resources_available"] == {}
    assert r["cpu_percent"] == 0.0


def test_resource_sums_skip_dead_nodes_and_placement_group_names():
    total, free = rows.resource_sums([node(), node(alive=False)])
    assert total == {"CPU": 4.0}
    assert free == {"CPU": 1.0}


def test_task_row_carries_the_traceback_of_a_failed_task():
    r = rows.task_row(
        {
            "task_id": "t1",
            "name": "boom",
            "state": "FAILED",
            "start_time_ms": 5,
            "end_time_ms": 9,
            "error_type": "TASK_EXECUTION_EXCEPTION",
            "error_message": "Traceback ...\nValueError: no",
        }
    )
    assert (r["start_time"], r["end_time"]) == (5, 9)
    assert r["error_message"].endswith("ValueError: no")


def test_task_summary_counts_by_name_and_state():
    out = rows.task_summary(
        [
            {"func_or_class_name": "f", "state": "FINISHED"},
            {"func_or_class_name": "f", "state": "FAILED"},
            {"func_or_class_name": "g", "state": "FINISHED"},
        ]
    )
    assert out["by_name"] == {"f": {"FINISHED": 1, "FAILED": 1}, "g": {"FINISHED": 1}}
    assert out["by_state"] == {"FINISHED": 2, "FAILED": 1}


def test_actor_row_gives_a_dead_actors_error():
    cause = {"actor_died_error_context": {"error_message": "it raised in __init__"}}
    dead = rows.actor_row(
        {"actor_id": "a", "state": "DEAD", "death_cause": cause, "pid": 0}
    )
    assert dead["death_cause"] == "it raised in __init__"
    assert dead["pid"] is None
    alive = rows.actor_row({"actor_id": "b", "state": "ALIVE", "death_cause": cause})
    assert alive["death_cause"] is None


def test_recent_jobs_newest_first_at_most_ten():
    found = [
        {"job_id": f"{i:08x}", "status": "SUCCEEDED", "start_time": i,
         "driver_info": {"pid": str(100 + i)}}
        for i in range(15)
    ]  # fmt: skip
    jobs = rows.recent_jobs(found)
    assert [j["start_time"] for j in jobs] == list(range(14, 4, -1))
    assert jobs[0]["driver_pid"] == 114


def test_placement_group_row():
    g = PlacementGroupInfo(
        pg_id=b"\x02" * 18, bundles=[{"CPU": 1.0}], strategy="PACK", state="CREATED"
    )
    r = rows.placement_group_row(g)
    assert r["strategy"] == "PACK"
    assert r["bundles"] == [{"CPU": 1.0}]


def test_worker_rows_join_processes_with_actors_and_running_tasks():
    procs = [
        ProcessStats(pid=11, worker_id=b"\x0a" * 16, rss=5),
        ProcessStats(pid=12, is_driver=True),
    ]
    seen = [
        {"pid": 12, "worker_id": "dd", "worker_type": "DRIVER", "is_alive": True},
        {"pid": 13, "worker_id": "ee", "worker_type": "WORKER", "is_alive": False},
    ]
    out = rows.worker_rows(
        procs, {11: 50.0}, seen, {11: "Counter"}, {"0a" * 16: "work"}
    )
    assert [w["pid"] for w in out] == [12, 11, 13]
    w11 = out[1]
    assert (w11["cpu_percent"], w11["actor_class"], w11["task_name"]) == (
        50.0,
        "Counter",
        "work",
    )
    assert out[0]["worker_id"] == "dd"
    assert out[0]["type"] == "DRIVER"
    assert out[2]["alive"] is False


@pytest.mark.parametrize(
    "name",
    ["../x", "/etc/passwd", "a/../../b", "a\\b", "x\x00", "", ".", "a//b", "./a"],
)
def test_log_names_that_could_leave_the_logs_folder_are_refused(name):
    with pytest.raises(BadRequest):
        check_filename(name)


def test_plain_log_names_pass():
    assert check_filename("worker-ab-1.out") == "worker-ab-1.out"
    assert check_filename("old/node.log.1") == "old/node.log.1"
