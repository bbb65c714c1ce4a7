"""The dashboard's JSON API on a real cluster: ``ember start --head`` plus a joined node.

The head starts its dashboard (``--dashboard-port 0``: a free port); this
process runs a workload as a driver of the cluster (tasks, a failing task,
an actor, a placement group) and reads every endpoint with an HTTP client,
as the pages do, with the token from the URL ``ember start`` printed.  Then
the dashboard and the control service are killed with SIGKILL: the
dashboard is started again by its supervisor and serves, and it reaches the
control service again after that one's restart.  ``ember stop`` stops it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import psutil
import pytest
from tests.integration.cli_cluster import (
    CLI,
    clean_up,
    env_for,
    make_root,
    processes_under,
    wait_until,
)

import ember
from ember.common import session
from ember.util.placement_group import placement_group, remove_placement_group

pytestmark = pytest.mark.multiprocess

STORE = str(128 * 2**20)
GRAFANA = "http://127.0.0.1:3000"


class Dash:
    def __init__(self, root: str) -> None:
        self.root = root
        self.url = ""
        self.token = ""
        self.address = ""
        self.session_dir = ""
        self.ctx = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = env_for(self.root, EMBER_DASHBOARD_HISTORY_INTERVAL_S="0.5")
        return subprocess.run(
            [*CLI, *args], env=env, capture_output=True, text=True, timeout=120
        )

    def get(self, path: str, *, token: str | None = "", headers=None):
        """(status, headers, body bytes) of GET ``path``."""
        req = urllib.request.Request(self.url + path, headers=headers or {})
        tok = self.token if token == "" else token
        if tok is not None:
            req.add_header("Authorization", f"Bearer {tok}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, path: str):
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def dashboard_procs(self) -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(supervisors, serving children) of the dashboard under this root."""
        sups, kids = [], []
        for p in processes_under(self.root):
            try:
                cmd = " ".join(p.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "ember.dashboard" in cmd:
                (sups if "--supervise" in cmd else kids).append(p)
        return sups, kids


@pytest.fixture(scope="module")
def dash():
    root = make_root("emdb")
    d = Dash(root)
    saved = os.environ.get(session.TOKEN_ENV)
    try:
        common = ("--node-ip-address", "127.0.0.1", "--object-store-memory", STORE)
        out = d.cli("start", "--head", "--port", "0", "--num-cpus", "2", *common,
                    "--dashboard-port", "0", "--grafana-host", GRAFANA)  # fmt: skip
        assert out.returncode == 0, out.stderr
        m = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", out.stdout)
        assert m, out.stdout
        assert out.stdout.count(m.group(2)) == 1  # the token is shown once
        d.url, d.token = m.groups()
        d.session_dir = re.search(r"\(session (\S+)\)", out.stdout).group(1)
        joined = re.search(
            r"ember start --address='([^']+)' --token-file (\S+)", out.stdout
        )
        hostport, token_file = joined.groups()
        token_file = token_file.replace("~", os.path.join(root, "home"), 1)
        out = d.cli("start", f"--address={hostport}", "--token-file", token_file,
                    "--num-cpus", "1", "--resources", '{"far": 1}', *common)  # fmt: skip
        assert out.returncode == 0, out.stderr
        d.address = hostport
        os.environ[session.TOKEN_ENV] = d.token
        d.ctx = ember.init(address=hostport)
        yield d
    finally:
        if ember.is_initialized():
            ember.shutdown()
        if saved is None:
            os.environ.pop(session.TOKEN_ENV, None)
        else:
            os.environ[session.TOKEN_ENV] = saved
        problems = clean_up(root)
    assert not problems, problems


@pytest.fixture(scope="module")
def workload(dash):
    """What the endpoints must show: tasks, a failed task, an actor, a placement group."""

    @ember.remote
    def square(x):
        return x * x

    @ember.remote(max_retries=0)
    def boom():
        raise ValueError("dashboard-boom")

    @ember.remote
    class Counter:
        def pid(self):
            return os.getpid()

    assert ember.get([square.remote(i) for i in range(3)], timeout=60) == [0, 1, 4]
    with pytest.raises(ValueError, match="dashboard-boom"):
        ember.get(boom.remote(), timeout=60)
    counter = Counter.options(name="dash_counter").remote()
    pid = ember.get(counter.pid.remote(), timeout=60)
    pg = placement_group([{"CPU": 1}], strategy="PACK", name="dash_pg")
    assert ember.get(pg.ready(), timeout=60)
    yield {"actor_pid": pid, "job_id": ember.get_runtime_context().get_job_id()}
    remove_placement_group(pg)


def test_the_url_file_and_version(dash):
    with open(os.path.join(dash.session_dir, "dashboard_url")) as f:
        assert f.read().strip() == dash.url
    assert os.stat(os.path.join(dash.session_dir, "dashboard_url")).st_mode & 0o077 == 0
    v = dash.json("/api/version")
    assert v["ember_version"] == ember.__version__
    assert v["session_name"] == os.path.basename(dash.session_dir)
    # a driver that joined the cluster has its dashboard's URL, as Ray's (no scheme)
    assert dash.ctx.dashboard_url == dash.url.removeprefix("http://")


def test_cluster_shows_the_workload(dash, workload):
    def ready():
        c = dash.json("/api/cluster")
        return (
            c["tasks_by_state"].get("FAILED", 0) >= 1
            and c["tasks_by_state"].get("FINISHED", 0) >= 3
        )

    # task events reach the control service in one-second batches
    assert wait_until(ready, 30), dash.json("/api/cluster")
    c = dash.json("/api/cluster")
    assert c["nodes_alive"] == 2
    assert c["nodes_dead"] == 0
    assert c["resources_total"]["CPU"] == 3.0
    assert c["resources_available"]["CPU"] <= 2.0  # the placement group holds one
    assert c["actors_by_state"].get("ALIVE", 0) >= 1
    assert c["session_name"] == os.path.basename(dash.session_dir)
    assert c["grafana_host"] == GRAFANA
    mine = [j for j in c["jobs"] if j["job_id"] == workload["job_id"]]
    assert mine
    assert mine[0]["status"] == "RUNNING"
    assert mine[0]["driver_pid"] == os.getpid()


def test_nodes_and_the_node_page(dash, workload):
    def sampled():
        rows = dash.json("/api/nodes")["nodes"]
        return len(rows) == 2 and all(r["mem_total"] > 0 for r in rows)

    assert wait_until(sampled, 30), dash.json("/api/nodes")
    rows = {r["node_id"]: r for r in dash.json("/api/nodes")["nodes"]}
    head = next(r for r in rows.values() if r["is_head"])
    far = next(r for r in rows.values() if not r["is_head"])
    assert far["resources_total"]["far"] == 1.0
    for r in rows.values():
        assert r["state"] == "ALIVE"
        assert r["node_ip"] == "127.0.0.1"
        assert r["disk_total"] > r["disk_used"] > 0
        assert r["object_store_total"] == 128 * 2**20
        assert 0.0 <= r["cpu_percent"] <= 100.0
    # idle workers exit; the actor's worker and this driver stay
    assert sum(r["num_workers"] for r in rows.values()) >= 2
    page = dash.json(f"/api/nodes/{head['node_id']}")
    assert page["node"]["node_id"] == head["node_id"]
    actor = [w for w in page["workers"] if w["pid"] == workload["actor_pid"]]
    if not actor:  # the actor runs on the other node
        page = dash.json(f"/api/nodes/{far['node_id']}")
        actor = [w for w in page["workers"] if w["pid"] == workload["actor_pid"]]
    assert actor
    assert actor[0]["actor_class"] == "Counter"
    assert actor[0]["alive"]
    assert actor[0]["rss"] > 0
    assert "node.log" in page["logs"]
    assert dash.get("/api/nodes/" + "ab" * 28)[0] == 404
    assert dash.get("/api/nodes/not-hex")[0] == 400


def test_actors_tasks_summary_and_timeline(dash, workload):
    actors = dash.json("/api/actors")["actors"]
    counter = next(a for a in actors if a["name"] == "dash_counter")
    assert counter["class_name"] == "Counter"
    assert counter["state"] == "ALIVE"
    assert counter["pid"] == workload["actor_pid"]
    assert counter["node_id"]

    def failed_boom():
        failed = dash.json("/api/tasks?state=FAILED")["tasks"]
        return [t for t in failed if t["name"] == "boom" and t["error_message"]]

    # the owner's and the worker's events of a task arrive in separate batches
    assert wait_until(failed_boom, 30), dash.json("/api/tasks?state=FAILED")
    boom = failed_boom()
    assert "ValueError" in boom[0]["error_message"]
    assert "dashboard-boom" in boom[0]["error_message"]
    assert boom[0]["end_time"] >= boom[0]["start_time"] > 0
    squares = dash.json("/api/tasks?name=square&limit=2")
    assert squares["total"] == 3
    assert len(squares["tasks"]) == 2
    assert all(t["state"] == "FINISHED" for t in squares["tasks"])
    assert dash.get("/api/tasks?limit=nope")[0] == 400
    summary = dash.json("/api/tasks/summary")
    assert summary["by_name"]["square"] == {"FINISHED": 3}
    assert summary["by_state"]["FAILED"] >= 1
    status, headers, body = dash.get("/api/timeline")
    assert status == 200
    assert "attachment" in headers["Content-Disposition"]
    events = json.loads(body)
    assert any(e.get("name") == "task::square" for e in events)


def test_placement_groups(dash, workload):
    pgs = dash.json("/api/placement_groups")["placement_groups"]
    pg = next(g for g in pgs if g["name"] == "dash_pg")
    assert pg["state"] == "CREATED"
    assert pg["strategy"] == "PACK"
    assert pg["bundles"] == [{"CPU": 1.0}]
    assert pg["job_id"] == workload["job_id"]


def test_logs_and_their_tails(dash, workload):
    nodes = dash.json("/api/logs")["nodes"]
    assert len(nodes) == 2
    head = next(r["node_id"] for r in dash.json("/api/nodes")["nodes"] if r["is_head"])
    assert {"node.log", "control.log", "dashboard.log"} <= set(nodes[head])
    q = urllib.parse.urlencode({"node_id": head, "filename": "node.log", "lines": 3})
    status, headers, body = dash.get(f"/api/logs/file?{q}")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert 0 < len(body.decode().strip().splitlines()) <= 3
    for bad, code in (("../../etc/passwd", 400), ("/etc/passwd", 400),
                      ("node.log/../node.log", 400), ("no-such.log", 404)):  # fmt: skip
        q = urllib.parse.urlencode({"node_id": head, "filename": bad})
        assert dash.get(f"/api/logs/file?{q}")[0] == code, bad


def test_history_fills_and_moves(dash):
    def ticks():
        return dash.json("/api/metrics/history?seconds=3600")["t"]

    assert wait_until(lambda: len(ticks()) >= 3, 30)
    first = ticks()
    assert wait_until(lambda: ticks()[-1] > first[-1], 30)
    h = dash.json("/api/metrics/history")
    assert h["interval_s"] == 0.5
    n = len(h["t"])
    for name in ("cpu_percent", "mem_used", "mem_total", "disk_used", "net_rx_bps",
                 "object_store_used", "object_store_total"):  # fmt: skip
        assert len(h[name]) == n, name
    assert h["mem_total"][-1] > 0
    assert h["object_store_total"][-1] == 2 * 128 * 2**20
    assert len(h["nodes"]) == 2
    assert dash.get("/api/metrics/history?seconds=x")[0] == 400


def test_grafana_links(dash):
    g = dash.json("/api/grafana")
    assert g["grafana_host"] == GRAFANA
    assert g["dashboards"]
    assert all(d["url"].startswith(GRAFANA + "/d/") for d in g["dashboards"])


def test_a_killed_dashboard_is_restarted_and_serves(dash):
    sups, kids = dash.dashboard_procs()
    assert len(sups) == 1
    assert len(kids) == 1
    old = kids[0].pid
    os.kill(old, signal.SIGKILL)

    def serves_again():
        _, now = dash.dashboard_procs()
        return [p.pid for p in now] not in ([], [old]) and dash.get("/api/version")[
            0
        ] == 200

    assert wait_until(serves_again, 60)
    assert dash.json("/api/nodes")["nodes"]


def test_the_dashboard_reconnects_after_the_control_service_restarts(dash):
    control = [
        p
        for p in processes_under(dash.root)
        if "ember.control" in " ".join(p.cmdline()) and "--supervise" not in p.cmdline()
    ]
    assert len(control) == 1
    control[0].send_signal(signal.SIGKILL)

    def nodes_back():
        status, _, body = dash.get("/api/nodes")
        return status == 200 and len(json.loads(body)["nodes"]) == 2

    assert wait_until(nodes_back, 90)
    assert dash.get("/api/version")[0] == 200


def test_ember_stop_stops_the_dashboard(dash):
    ember.shutdown()
    out = dash.cli("stop")
    assert out.returncode == 0, out.stderr
    assert "dashboard" in out.stdout
    assert wait_until(lambda: dash.dashboard_procs() == ([], []), 30)
    assert not os.path.exists(os.path.join(dash.session_dir, "dashboard_url"))


def test_a_taken_dashboard_port_warns_and_the_head_runs_without_it(dash):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        out = dash.cli("start", "--head", "--port", "0", "--num-cpus", "1",
                       "--node-ip-address", "127.0.0.1", "--object-store-memory", STORE,
                       "--dashboard-port", str(port))  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"127.0.0.1:{port}" in out.stderr
        assert "without a dashboard" in out.stderr
        assert "?token=" not in out.stdout
        assert dash.dashboard_procs() == ([], [])
        assert dash.cli("status").returncode == 0
    finally:
        taken.close()
        assert dash.cli("stop").returncode == 0
