"""The state API (``ray.util.state``) against a real cluster: the same test passes on Ray.

Task events reach the cluster asynchronously (in batches, about every second),
so each check waits for the state it expects with a deadline.
"""

from __future__ import annotations

import os

import pytest
from tests.compat.conftest import IS_REAL_RAY, wait_for_condition

import ember as ray
from ember.util.state import (
    get_actor,
    get_node,
    get_placement_group,
    get_task,
    list_actors,
    list_jobs,
    list_nodes,
    list_placement_groups,
    list_tasks,
    list_workers,
    summarize_actors,
    summarize_tasks,
)
from ember.util.state.exception import RayStateApiException

pytestmark = pytest.mark.cluster_only("the state API asks a cluster's services")


@pytest.fixture
def cluster(ray_start_regular, monkeypatch):
    """A fresh cluster. On real Ray it is named in RAY_ADDRESS: Ray's state client
    otherwise looks for every Ray instance on the machine (other test runs share it)
    and refuses when it finds several; ember's calls use the driver's own cluster."""
    if IS_REAL_RAY:
        monkeypatch.setenv("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
    return ray_start_regular


def _one(rows):
    assert len(rows) == 1, rows
    return rows[0]


def test_list_tasks_reports_finished_and_failed_attempts(cluster):

    @ray.remote
    def ok_task():
        return os.getpid()

    @ray.remote(max_retries=0)
    def bad_task():
        raise ValueError("state-api-boom")

    pid = ray.get(ok_task.remote())
    with pytest.raises(ValueError):
        ray.get(bad_task.remote())

    def finished():
        # the executor's events (its worker and pid) may come a batch later
        rows = list_tasks(filters=[("name", "=", "ok_task")])
        return rows and rows[0].state == "FINISHED" and rows[0].worker_pid

    wait_for_condition(finished, timeout=30)
    wait_for_condition(
        lambda: (
            [
                (t.state, bool(t.worker_pid))
                for t in list_tasks(filters=[("name", "=", "bad_task")])
            ]
            == [("FAILED", True)]
        ),
        timeout=30,
    )
    ctx = ray.get_runtime_context()
    t = _one(list_tasks(filters=[("name", "=", "ok_task")]))
    assert t["state"] == t.state == "FINISHED"  # attribute and dict access
    assert t.type == "NORMAL_TASK"
    assert t.attempt_number == 0
    assert t.worker_pid == pid
    assert t.node_id == ctx.get_node_id()
    assert t.job_id == ctx.get_job_id()
    assert t.actor_id is None
    assert t.error_type is None
    assert t.start_time_ms is None  # a detail column

    bad = _one(list_tasks(filters=[("name", "=", "bad_task")], detail=True))
    assert bad.error_type == "TASK_EXECUTION_EXCEPTION"
    assert "state-api-boom" in bad.error_message
    assert bad.start_time_ms <= bad.end_time_ms
    assert [e["state"] for e in bad.events][-1] == "FAILED"


def test_filters_predicates_and_limit(cluster):

    @ray.remote
    def square(x):
        return x * x

    ray.get([square.remote(i) for i in range(4)])
    wait_for_condition(
        lambda: (
            len(
                list_tasks(
                    filters=[("name", "=", "square"), ("state", "=", "FINISHED")]
                )
            )
            == 4
        ),
        timeout=30,
    )
    assert (
        len(list_tasks(filters=[("state", "=", "finished"), ("name", "=", "SQUARE")]))
        == 4
    )
    assert (
        list_tasks(filters=[("name", "=", "square"), ("state", "!=", "FINISHED")]) == []
    )
    assert len(list_tasks(filters=[("name", "=", "square")], limit=2)) == 2
    with pytest.raises(ValueError):
        list_tasks(filters=[("state", ">", "RUNNING")])
    with pytest.raises(RayStateApiException):
        list_tasks(filters=[("no_such_column", "=", "x")])


def test_get_task_by_id_and_by_ref(cluster):

    @ray.remote
    def named_task():
        return 1

    ref = named_task.remote()
    ray.get(ref)
    task_id = ref.task_id().hex()
    wait_for_condition(
        lambda: (t := get_task(task_id)) is not None and t.state == "FINISHED",
        timeout=30,
    )
    t = get_task(ref)
    assert t.task_id == task_id
    assert t.name == "named_task"
    assert t.required_resources == {"CPU": 1.0}  # get_* returns the detail columns
    assert get_task("ff" * len(bytes.fromhex(task_id))) is None


def test_actors_and_their_tasks(cluster):

    @ray.remote
    class Keeper:
        def pid(self):
            return os.getpid()

    a = Keeper.options(name="keeper-1").remote()
    pid = ray.get(a.pid.remote())
    actor_id = a._actor_id.hex()

    row = _one(list_actors(filters=[("class_name", "=", "Keeper")]))
    assert (row.actor_id, row.state, row.name, row.pid) == (
        actor_id,
        "ALIVE",
        "keeper-1",
        pid,
    )
    assert row.node_id == ray.get_runtime_context().get_node_id()
    assert row.job_id == ray.get_runtime_context().get_job_id()
    detail = get_actor(actor_id)
    assert detail.is_detached is False
    assert get_actor("00" * len(bytes.fromhex(actor_id))) is None

    wait_for_condition(
        lambda: (
            [
                (t.state, bool(t.worker_pid))
                for t in list_tasks(
                    filters=[("type", "=", "ACTOR_TASK"), ("actor_id", "=", actor_id)]
                )
            ]
            == [("FINISHED", True)]
        ),
        timeout=30,
    )
    call = _one(
        list_tasks(filters=[("actor_id", "=", actor_id), ("type", "=", "ACTOR_TASK")])
    )
    assert call.name == "Keeper.pid"
    assert call.worker_pid == pid

    summary = summarize_actors()["cluster"]
    assert summary["summary"]["Keeper"]["state_counts"] == {"ALIVE": 1}
    assert summary["total_actors"] >= 1

    ray.kill(a)
    wait_for_condition(
        lambda: list_actors(filters=[("actor_id", "=", actor_id)])[0].state == "DEAD",
        timeout=30,
    )


def test_summarize_tasks_counts_per_function(cluster):

    @ray.remote
    def counted():
        return 0

    ray.get([counted.remote() for _ in range(3)])

    def three_finished():
        s = summarize_tasks()["cluster"]["summary"].get("counted")
        return s is not None and s["state_counts"] == {"FINISHED": 3}

    wait_for_condition(three_finished, timeout=30)
    cluster = summarize_tasks()["cluster"]
    entry = cluster["summary"]["counted"]
    assert entry["type"] == "NORMAL_TASK"
    assert cluster["total_tasks"] >= 3
    assert cluster["summary_by"] == "func_name"


def test_nodes_jobs_workers(cluster):
    ctx = ray.get_runtime_context()
    node = _one(list_nodes())
    assert node.node_id == ctx.get_node_id()
    assert node.state == "ALIVE"
    assert node.is_head_node is True
    assert node.resources_total["CPU"] == 2.0
    assert get_node(node.node_id).node_ip == node.node_ip

    job = _one([j for j in list_jobs() if j.job_id == ctx.get_job_id()])
    assert job.status == "RUNNING"
    assert job.type == "DRIVER"

    def driver_seen():
        return any(
            w.pid == os.getpid()
            for w in list_workers(filters=[("worker_type", "=", "DRIVER")])
        )

    wait_for_condition(driver_seen, timeout=30)
    drivers = [w for w in list_workers() if w.pid == os.getpid()]
    assert _one(drivers).is_alive is True


def test_placement_groups(cluster):
    from ember.util.placement_group import placement_group, remove_placement_group

    pg = placement_group([{"CPU": 1}], name="state-pg")
    ray.get(pg.ready())
    row = _one(list_placement_groups(filters=[("name", "=", "state-pg")]))
    assert row.placement_group_id == pg.id.hex()
    assert row.state == "CREATED"
    detail = get_placement_group(pg.id.hex())
    assert [b["unit_resources"] for b in detail.bundles] == [{"CPU": 1.0}]
    remove_placement_group(pg)
    wait_for_condition(
        lambda: (
            list_placement_groups(filters=[("name", "=", "state-pg")])[0].state
            == "REMOVED"
        ),
        timeout=30,
    )
