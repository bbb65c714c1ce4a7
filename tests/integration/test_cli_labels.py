"""``ember start --labels``: the node's labels reach nodes(), tasks and label scheduling."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.integration.cli_cluster import (
    CLI,
    env_for,
    make_root,
    processes_under,
    remove_root,
    stop_everything_under,
)

pytestmark = pytest.mark.multiprocess

DRIVER = """
import json
import ember as ray
from ember.util.scheduling_strategies import In, NodeLabelSchedulingStrategy

ray.init(address="auto")

@ray.remote
def labels():
    return ray.get_runtime_context().get_node_labels()

us = NodeLabelSchedulingStrategy({"region": In("us")})
print(json.dumps({
    "nodes": [n["Labels"] for n in ray.nodes()],
    "task": ray.get(labels.options(scheduling_strategy=us).remote(), timeout=60),
}))
"""


def _cli(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env_for(root), capture_output=True, text=True, timeout=120
    )


def test_start_labels_schedule_tasks():
    root = make_root("emlb")
    try:
        bad = _cli(root, "start", "--head", "--labels", "region=us east")
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert "--labels" in bad.stderr
        assert not processes_under(root)
        out = _cli(
            root,
            "start",
            "--head",
            "--port",
            "0",
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--labels",
            "region=us,disk=ssd",
        )
        assert out.returncode == 0, out.stderr
        run = subprocess.run(
            [sys.executable, "-c", DRIVER],
            env=env_for(root),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        got = json.loads(run.stdout.strip().splitlines()[-1])
        (node,) = got["nodes"]
        assert node["region"] == "us"
        assert node["disk"] == "ssd"
        assert "ray.io/node-id" in node
        assert got["task"] == node
    finally:
        survivors = stop_everything_under(root)
        leaked = remove_root(root)
    assert not survivors, survivors
    assert not leaked, leaked
