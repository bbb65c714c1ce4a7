"""working_dir and py_modules on a head and a second node started with ``ember start``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root

pytestmark = pytest.mark.multiprocess

DRIVER = """
import json, os, sys
import ember as ray
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy

project, helpers = sys.argv[1], sys.argv[2]
ray.init(address="auto", runtime_env={
    "working_dir": project, "py_modules": [helpers], "excludes": ["data/"],
})
# the package is made now: later edits of the folder do not reach the workers
with open(os.path.join(project, "mymod.py"), "w") as f:
    f.write("VALUE = 'edited after init'\\n")

def probe():
    import mymod, helperpkg
    return {
        "value": mymod.VALUE, "helper": helperpkg.NAME, "cwd": os.getcwd(),
        "data": os.path.exists("data"), "log": os.path.exists("debug.log"),
        "node": ray.get_runtime_context().get_node_id(),
        "env": ray.get_runtime_context().runtime_env,
    }

task = ray.remote(probe)

@ray.remote
class Probe:
    def probe(self):
        return probe()

out = []
for n in ray.nodes():
    pin = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
    out.append(ray.get(task.options(scheduling_strategy=pin).remote(), timeout=120))
    actor = Probe.options(scheduling_strategy=pin).remote()
    out.append(ray.get(actor.probe.remote(), timeout=120))
print(json.dumps({"results": out, "nodes": [n["NodeID"] for n in ray.nodes()]}))
"""


def _cli(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env_for(root), capture_output=True, text=True, timeout=120
    )


def test_working_dir_and_py_modules_reach_tasks_and_actors_on_two_nodes():
    root = make_root("emrw")
    try:
        project = f"{root}/project"
        helpers = f"{root}/lib/helperpkg"
        for path, text in {
            f"{project}/mymod.py": "VALUE = 'from the working dir'\n",
            f"{project}/data/big.bin": "x" * 1000,
            f"{project}/debug.log": "noise",
            f"{project}/.gitignore": "*.log\n",
            f"{helpers}/__init__.py": "NAME = 'helper'\n",
        }.items():
            import os

            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        head = _cli(
            root, "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
            "--num-cpus", "1",
        )  # fmt: skip
        assert head.returncode == 0, head.stderr
        address = head.stdout.split("--address='")[1].split("'")[0]
        node = _cli(
            root, "start", f"--address={address}", "--node-ip-address", "127.0.0.1",
            "--num-cpus", "1",
        )  # fmt: skip
        assert node.returncode == 0, node.stderr
        run = subprocess.run(
            [sys.executable, "-c", DRIVER, project, helpers],
            env=env_for(root),
            cwd=root,  # the driver's own folder has no mymod
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, run.stderr
        got = json.loads(run.stdout.strip().splitlines()[-1])
        assert len(got["nodes"]) == 2
        results = got["results"]
        assert {r["node"] for r in results} == set(got["nodes"])
        for r in results:
            assert r["value"] == "from the working dir"
            assert r["helper"] == "helper"
            assert "/runtime_resources/working_dir/_ember_pkg_" in r["cwd"]
            assert not r["data"], "excludes must leave data/ out"
            assert not r["log"], ".gitignore must leave *.log out"
            assert r["env"]["working_dir"].startswith("gcs://_ember_pkg_")
    finally:
        problems = clean_up(root)
    assert not problems, problems
