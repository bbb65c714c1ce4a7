"""``ember up`` / ``ember down`` with the local provider: min_workers nodes appear and go."""

from __future__ import annotations

import json
import os

import pytest
from tests.cli.clitools import _alive, _recorded_pids, ember_cli
from tests.conftest import wait_until

from ember.autoscaler.config import NODE_TYPE_LABEL
from ember.cli import cluster_client
from ember.common import session

# slow: the default run stays under 15 minutes on 2 cores (.ci/run runs -m slow)
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


def config(root: str, **extra) -> str:
    body = {
        "cluster_name": "updown",
        "max_workers": 1,
        "provider": {"type": "local"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 1, "object_store_memory": 64 * 2**20}},
            "small": {
                "resources": {"CPU": 1, "object_store_memory": 64 * 2**20},
                "min_workers": 1,
                "max_workers": 1,
            },
        },
        **extra,
    }
    path = os.path.join(root, "cluster.yaml")
    with open(path, "w") as f:
        json.dump(body, f)  # JSON is YAML
    return path


def small_nodes(address: str) -> list:
    token = session.read_token(address)
    status = cluster_client.get_status(address, token)
    return [
        n for n in status.nodes if n.labels.get(NODE_TYPE_LABEL) == "small" and n.alive
    ]


def test_up_starts_the_head_and_min_workers_and_down_stops_everything(home):
    path = config(home)
    env = {**os.environ, "EMBER_AUTOSCALER_UPDATE_INTERVAL_S": "0.5"}
    out = ember_cli("up", path, "--port", "0", env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    (rec,) = [r for r in session.list_session_records() if r.get("head")]
    assert rec["cluster_name"] == "updown"
    assert "autoscaler" in {p["name"] for p in rec["processes"]}
    address = rec["control_address"]
    assert wait_until(lambda: len(small_nodes(address)) == 1, 180), small_nodes(address)
    again = ember_cli("up", path, "--port", "0", env=env)
    assert again.returncode != 0
    assert "already up" in again.stderr
    running = _recorded_pids()
    out = ember_cli("down", path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert wait_until(lambda: not _alive(running), 30), _alive(running)
    assert session.list_session_records() == []


def test_a_bad_config_is_refused_before_anything_starts(home):
    path = config(home, max_wrokers=3)
    out = ember_cli("up", path)
    assert out.returncode != 0
    assert "unknown cluster config key" in out.stderr
    assert session.list_session_records() == []
    out = ember_cli("start", "--head", "--autoscaling-config", path)
    assert out.returncode != 0
    assert "max_wrokers" in out.stderr
