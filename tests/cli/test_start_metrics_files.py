"""``ember start --head [--temp-dir DIR]``: session_latest and the Prometheus/Grafana files."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from tests.cli.clitools import STORE, ember_cli
from tests.conftest import wait_until

from ember.common import session

pytestmark = pytest.mark.multiprocess

NOBODY = 65534


def _start(*extra: str, **env: str):
    full = dict(os.environ, **env)
    return ember_cli(
        "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE, *extra, env=full,
    )  # fmt: skip


def _targets(session_dir: str) -> list[dict]:
    path = os.path.join(session_dir, "prom_metrics_service_discovery.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def test_temp_dir_holds_the_session_its_latest_link_and_the_metrics_files(home):
    temp = os.path.join(home, "ray")
    out = _start("--temp-dir", temp, EMBER_METRICS_SCRAPE_INTERVAL_S="2")
    assert out.returncode == 0, out.stderr
    # The cluster record stays in the runtime folder, where init() reads it.
    rec = session.read_cluster_record()
    sd = rec["session_dir"]
    assert os.path.dirname(sd) == temp
    assert stat.S_IMODE(os.stat(temp).st_mode) == 0o700
    latest = os.path.join(temp, "session_latest")
    assert os.path.realpath(latest) == sd
    assert f"(session {sd})" in out.stdout
    prom = f"{latest}/metrics/prometheus/prometheus.yml"
    graf = f"{latest}/metrics/grafana/grafana.ini"
    assert f"prometheus --config.file={prom}" in out.stdout
    assert f"grafana-server --config {graf} web" in out.stdout

    yml = Path(prom).read_text()
    token_file = re.search(r'credentials_file: "([^"]+)"', yml).group(1)
    assert token_file == session.token_path(rec["control_address"])
    assert Path(token_file).read_text().strip() == rec["token"]
    assert rec["token"] not in yml
    assert "scrape_interval: 2s" in yml
    assert os.path.join(sd, "prom_metrics_service_discovery.json") in yml
    ini = Path(graf).read_text()
    assert f"provisioning = {sd}/metrics/grafana/provisioning" in ini
    # The head's node exports metrics: the control service listed it.
    assert wait_until(
        lambda: any(t["labels"].get("ember_component") == "node" for t in _targets(sd)),
        30,
    ), _targets(sd)


def test_a_joining_node_keeps_session_latest_on_the_head(home):
    out = _start()
    assert out.returncode == 0, out.stderr
    rec = session.read_cluster_record()
    address = rec["control_address"].removeprefix("tcp:")
    joined = ember_cli(
        "start", "--address", address, "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE,
    )  # fmt: skip
    assert joined.returncode == 0, joined.stderr
    latest = os.path.join(session.runtime_dir_path(), "session_latest")
    assert os.path.realpath(latest) == rec["session_dir"]
    assert len(session.session_dirs(session.runtime_dir_path())) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another user")
def test_a_temp_dir_of_another_user_is_refused_before_anything_starts(home):
    temp = os.path.join(home, "theirs")
    os.mkdir(temp, 0o700)
    os.chown(temp, NOBODY, NOBODY)
    out = _start("--temp-dir", temp)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"ember refuses to use {temp}" in out.stderr
    assert f"uid {NOBODY}" in out.stderr
    assert "Traceback" not in out.stderr
    assert session.read_cluster_record() is None
    assert not session.list_session_records()


def test_bad_metrics_knobs_are_refused_before_anything_starts(home):
    out = _start(EMBER_PROMETHEUS_HOST="localhost:9090")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "EMBER_PROMETHEUS_HOST" in out.stderr
    assert session.read_cluster_record() is None
