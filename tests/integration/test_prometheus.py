"""A real Prometheus, started with the prometheus.yml ``ember start --head`` wrote.

The head and two nodes run under a private HOME/TMPDIR; Prometheus is started
the way the README says (``--config.file=<root>/session_latest/metrics/
prometheus/prometheus.yml``), with a 1 s scrape interval (the writer's
``EMBER_METRICS_SCRAPE_INTERVAL_S``).  Every target must be up, every PromQL
expression of every generated Grafana panel must return data while a
workload runs, and a node that joins later must be scraped without a restart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root, wait_until

from ember.metrics.files import dashboards

PROMETHEUS = shutil.which("prometheus")
# slow: the default run stays under 15 minutes on 2 cores (.ci/run runs -m slow)
pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(420),
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="the prometheus binary is not installed (Debian package 'prometheus')",
    ),
]

#: this module's ports (23200-23299)
PROM_PORT = 23210
STORE = str(64 * 1024 * 1024)
#: substituted for the dashboards' variables, as Grafana does with "All"
ALL = ".+"
RATE_INTERVAL = "20s"
#: metrics a machine without GPUs does not have
GPU_METRICS = re.compile(r"ember_node_(gpus_|gram_)")

WORKLOAD = """
import os, sys, time
import numpy as np
import ember
from ember.util.placement_group import placement_group

stop = sys.argv[1]
ember.init(address="auto", configure_logging=False)

@ember.remote
def crunch(n):
    return sum(range(n))

@ember.remote
def hold(path):
    while not os.path.exists(path):  # a task that runs while the test looks
        time.sleep(0.1)
    return 1

@ember.remote(num_cpus=0)
class Keeper:
    def ping(self):
        return 1

keepers = [Keeper.remote() for _ in range(2)]
ember.get([k.ping.remote() for k in keepers], timeout=60)
pg = placement_group([{"CPU": 1}])
ember.get(pg.ready(), timeout=60)
held = hold.remote(stop)
# More than the head's store holds: some of it is spilled.
blocks = [ember.put(np.full(12 * 1024 * 1024, i, dtype=np.uint8)) for i in range(8)]
print("ready", flush=True)
while not os.path.exists(stop):
    ember.get([crunch.remote(20_000) for _ in range(4)], timeout=60)
print(ember.get(held, timeout=60), len(blocks), flush=True)
"""


def _cli(root: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env_for(root, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _start_node(root: str, address: str) -> None:
    out = _cli(
        root, "start", "--address", address, "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def _spawn(log: str, args: list[str], **kw) -> subprocess.Popen[str]:
    """Start ``args`` with stderr into the file ``log``."""
    with open(log, "w") as f:
        return subprocess.Popen(args, stderr=f, text=True, **kw)


class Prom:
    """HTTP API of the Prometheus under test."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> dict:
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def targets(self) -> list[dict]:
        return self.get("/api/v1/targets", state="active")["data"]["activeTargets"]

    def query(self, expr: str) -> list[dict]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]


def _concrete(expr: str) -> str:
    """A panel's expression as Grafana sends it with "All" chosen."""
    return (
        expr.replace("$SessionName", ALL)
        .replace("$NodeAddress", ALL)
        .replace("$__rate_interval", RATE_INTERVAL)
    )


def _all_up(prom: Prom, count: int) -> bool:
    ts = prom.targets()
    return len(ts) == count and all(t["health"] == "up" for t in ts)


def _discovered(root: str, session_dir: str) -> int:
    path = os.path.join(session_dir, "prom_metrics_service_discovery.json")
    with open(path) as f:
        return len(json.load(f))


def test_prometheus_scrapes_every_node_and_every_panel_has_data():
    root = make_root("emprom")
    procs: list[subprocess.Popen[str]] = []
    try:
        out = _cli(
            root, "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
            "--num-cpus", "2", "--object-store-memory", STORE,
            EMBER_METRICS_SCRAPE_INTERVAL_S="1",
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        address = re.search(r"--address='([^']+)'", out.stdout).group(1)
        config = re.search(r"--config\.file=(\S+)", out.stdout).group(1)
        assert "/session_latest/metrics/prometheus/prometheus.yml" in config
        assert re.search(r"grafana-server --config \S+/grafana\.ini", out.stdout)
        session_dir = os.path.realpath(
            os.path.dirname(os.path.dirname(os.path.dirname(config)))
        )
        for _ in range(2):
            _start_node(root, address)
        # Head (control service + node) and two nodes.
        expected = 4
        assert wait_until(lambda: _discovered(root, session_dir) == expected, 30), Path(
            os.path.join(session_dir, "prom_metrics_service_discovery.json")
        ).read_text()

        prom = _spawn(
            os.path.join(root, "prometheus.log"),
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={os.path.join(root, 'prom-data')}",
                f"--web.listen-address=127.0.0.1:{PROM_PORT}",
            ],
            env=env_for(root),
            stdout=subprocess.DEVNULL,
        )
        procs.append(prom)
        api = Prom(PROM_PORT)
        assert wait_until(api.ready, 60), Path(
            os.path.join(root, "prometheus.log")
        ).read_text()
        assert wait_until(lambda: _all_up(api, expected), 60), json.dumps(
            api.targets(), indent=1
        )

        stop = os.path.join(root, "stop")
        work = _spawn(
            os.path.join(root, "workload.log"),
            [sys.executable, "-c", WORKLOAD, stop],
            env=env_for(root),
            cwd=root,
            stdout=subprocess.PIPE,
        )
        procs.append(work)
        assert work.stdout is not None
        assert work.stdout.readline().strip() == "ready", Path(
            os.path.join(root, "workload.log")
        ).read_text()

        exprs = [
            (d.title, title, expr)
            for d in dashboards.build_all()
            for title, expr in dashboards.expressions(d.model)
            if not GPU_METRICS.search(expr)
        ]
        assert len(exprs) > 30
        missing: list[tuple[str, str, str]] = []

        def every_panel_has_data() -> bool:
            missing[:] = [e for e in exprs if not api.query(_concrete(e[2]))]
            return not missing

        assert wait_until(every_panel_has_data, 90, interval_s=1.0), "\n".join(
            f"{d} / {t}: {e}" for d, t, e in missing
        )

        # A node that joins now is scraped by the running Prometheus.
        _start_node(root, address)
        assert wait_until(lambda: _all_up(api, expected + 1), 60), json.dumps(
            api.targets(), indent=1
        )
        assert wait_until(
            lambda: (
                len(api.query("count(ember_node_cpu_count) by (NodeAddress, instance)"))
                == 4
            ),
            30,
        )

        Path(stop).touch()
        rest, _ = work.communicate(timeout=60)
        assert work.returncode == 0, Path(
            os.path.join(root, "workload.log")
        ).read_text()
        assert rest.split() == ["1", "8"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        problems = clean_up(root)
    assert not problems, problems
