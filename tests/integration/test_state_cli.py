"""``ember list/get/summary/timeline`` against a cluster started with ``ember start``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root, wait_until

pytestmark = pytest.mark.multiprocess

PORT = "23311"

DRIVER = """
import ember as ray

ray.init(address="auto")

@ray.remote
def ok_task(x):
    return x

@ray.remote(max_retries=0)
def bad_task():
    raise KeyError("cli-boom")

@ray.remote
class Holder:
    def ping(self):
        return "pong"

print(ray.get([ok_task.remote(i) for i in range(3)]))
try:
    ray.get(bad_task.remote())
except KeyError:
    pass
h = Holder.remote()
print(ray.get(h.ping.remote()))
"""


def _cli(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env_for(root), capture_output=True, text=True, timeout=120
    )


def _tasks(root: str, *args: str) -> list[dict]:
    out = _cli(root, "list", "tasks", "--format", "json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def cluster_root():
    root = make_root("emst")
    try:
        up = _cli(
            root,
            "start",
            "--head",
            "--port",
            PORT,
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "2",
        )
        assert up.returncode == 0, up.stderr
        run = subprocess.run(
            [sys.executable, "-c", DRIVER],
            env=env_for(root),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr

        def all_ended() -> bool:
            tasks = _tasks(root)
            if not all(t["worker_id"] for t in tasks):
                return False  # an executor's batch is still on its way
            states = {t["name"]: t["state"] for t in tasks}
            return (
                states.get("ok_task") == "FINISHED"
                and states.get("bad_task") == "FAILED"
                and states.get("Holder.ping") == "FINISHED"
            )

        assert wait_until(all_ended, 30), [
            (t["name"], t["state"], t["worker_id"]) for t in _tasks(root)
        ]
        yield root
    finally:
        problems = clean_up(root)
    assert not problems


def test_list_tasks_with_filters_and_formats(cluster_root):
    failed = _tasks(cluster_root, "--filter", "state=FAILED")
    assert [t["name"] for t in failed] == ["bad_task"]
    assert failed[0]["error_type"] == "TASK_EXECUTION_EXCEPTION"
    assert len(_tasks(cluster_root, "--filter", "name=ok_task", "--limit", "2")) == 2
    assert all(
        t["name"] != "ok_task" for t in _tasks(cluster_root, "-f", "name!=ok_task")
    )

    table = _cli(
        cluster_root, "list", "tasks", "--filter", "name=ok_task", "--limit", "1"
    )
    assert table.returncode == 0, table.stderr
    assert "TASK_ID" in table.stdout
    assert "FINISHED" in table.stdout
    assert "Showing 1 of the 3" in table.stderr  # cut by --limit: said so

    detail = _cli(cluster_root, "list", "tasks", "--detail", "--filter", "state=failed")
    rows = yaml.safe_load(detail.stdout)  # --detail prints YAML
    assert "cli-boom" in rows[0]["error_message"]


def test_get_and_list_other_resources(cluster_root):
    (bad,) = _tasks(cluster_root, "--filter", "name=bad_task")
    got = _cli(cluster_root, "get", "tasks", bad["task_id"])
    assert got.returncode == 0, got.stderr
    (row,) = yaml.safe_load(got.stdout)
    assert row["task_id"] == bad["task_id"]
    assert row["state"] == "FAILED"
    missing = _cli(cluster_root, "get", "tasks", "ab" * 16)
    assert "not found" in missing.stdout

    actors = json.loads(_cli(cluster_root, "list", "actors", "--format", "json").stdout)
    assert [a["class_name"] for a in actors] == ["Holder"]
    nodes = json.loads(_cli(cluster_root, "list", "nodes", "--format", "json").stdout)
    assert [n["state"] for n in nodes] == ["ALIVE"]
    jobs = json.loads(_cli(cluster_root, "list", "jobs", "--format", "json").stdout)
    assert [j["status"] for j in jobs] == ["SUCCEEDED"]  # the driver has exited
    workers = json.loads(
        _cli(cluster_root, "list", "workers", "--format", "json").stdout
    )
    assert {w["worker_type"] for w in workers} >= {"DRIVER", "WORKER"}
    pgs = _cli(cluster_root, "list", "placement-groups")
    assert pgs.returncode == 0
    assert "No resource" in pgs.stdout

    bogus = _cli(cluster_root, "list", "bogus")
    assert bogus.returncode == 2
    assert "placement-groups" in bogus.stderr
    bad_filter = _cli(cluster_root, "list", "tasks", "--filter", "colour=red")
    assert bad_filter.returncode == 1
    assert "Filterable columns" in bad_filter.stderr


def test_summary(cluster_root):
    tasks = _cli(cluster_root, "summary", "tasks")
    assert tasks.returncode == 0, tasks.stderr
    assert "total_tasks: 4" in tasks.stdout
    assert "ok_task" in tasks.stdout
    assert "FINISHED" in tasks.stdout
    actors = _cli(cluster_root, "summary", "actors")
    assert "Holder" in actors.stdout
    assert "total_actors: 1" in actors.stdout


def test_timeline_is_chrome_trace_json_with_one_event_per_task(cluster_root, tmp_path):
    out = tmp_path / "trace.json"
    run = _cli(cluster_root, "timeline", "--output", str(out))
    assert run.returncode == 0, run.stderr
    trace = json.loads(out.read_text())
    bars = [e for e in trace if e["ph"] == "X"]
    ran = [t for t in _tasks(cluster_root, "--detail") if t["end_time_ms"] is not None]
    assert len(bars) == len(ran) == 3 + 1 + 2  # 3 ok, 1 bad, Holder.__init__, ping
    assert sorted(b["args"]["task_id"] for b in bars) == sorted(
        t["task_id"] for t in ran
    )
    assert all({"ts", "dur", "pid", "tid", "name"} <= set(b) for b in bars)
    workers = {(b["pid"], b["tid"]) for b in bars}
    assert len(workers) == len({t["worker_id"] for t in ran})
