"""The seed programs, unchanged, against a three-node cluster made with ``ember start``.

A head and two joined nodes (one CPU each, on 127.0.0.1) are started with the
command line under a private HOME and TMPDIR; each seed in
``src/ember/examples/`` runs as its own process with ``EMBER_ADDRESS=auto``
(``simple_task.py`` and ``counters.py`` call ``ray.init()``) or its own
``ray.init(address="auto")``, which finds the cluster through the record
``ember start`` wrote.  The tests assert on what a user reads in the output.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
from tests.integration.cli_cluster import (
    CLI,
    env_for,
    make_root,
    processes_under,
    remove_root,
    stop_everything_under,
)

import ember.examples

pytestmark = pytest.mark.multiprocess

EXAMPLES = os.path.dirname(os.path.abspath(ember.examples.__file__))
# forward_pass.py passes 24.8 MB of weights by value to each of its 20 tasks,
# all submitted at once: 496 MB in the driver's node store.
STORE = str(1024 * 1024 * 1024)
RUN_TIMEOUT_S = 240.0
TASK_LINE = re.compile(r"Task (\d) is running on node NodeID\(([0-9a-f]{32})\)")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit code {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class SeedCluster:
    """The cluster's private root, its node ids, and the seeds' runs (each run once)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.node_ids: set[str] = set()
        self.runs: dict[str, Run] = {}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env_for(self.root), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    def run(self, seed: str) -> Run:
        if seed not in self.runs:
            out = subprocess.run(
                [sys.executable, os.path.join(EXAMPLES, seed)],
                # one line per task, as Ray prints them with RAY_DEDUP_LOGS=0 (the
                # five "Task i is running on node X" lines differ only in numbers)
                env=env_for(self.root, EMBER_ADDRESS="auto", EMBER_DEDUP_LOGS="0"),
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
            self.runs[seed] = Run(out.returncode, out.stdout, out.stderr)
        return self.runs[seed]


@pytest.fixture(scope="module")
def cluster():
    root = make_root("emsd")
    c = SeedCluster(root)
    try:
        common = ("--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                  "--object-store-memory", STORE)  # fmt: skip
        out = c.cli("start", "--head", "--port", "0", *common)
        assert out.returncode == 0, out.stderr
        address = re.search(r"ember start --address='([^']+)'", out.stdout)
        assert address, out.stdout
        for _ in range(2):
            out = c.cli("start", f"--address={address.group(1)}", *common)
            assert out.returncode == 0, out.stderr
        status = c.cli("status")
        assert status.returncode == 0, status.stderr
        alive = status.stdout.split("Alive:")[1].split("Dead:")[0]
        c.node_ids = set(re.findall(r"node_([0-9a-f]{32})", alive))
        assert len(c.node_ids) == 3, status.stdout
        yield c
    finally:
        survivors = stop_everything_under(root)
        stray = processes_under(root)
        leaked = remove_root(root)
    assert not survivors, f"'ember stop --force' left {survivors} running"
    assert not stray, stray
    assert not leaked, f"shared-memory arenas left behind: {leaked}"


def worker_log_lines(root: str) -> list[str]:
    lines = []
    for path in glob.glob(f"{root}/ember-*/session_*/logs/worker-*.out"):
        if "/session_latest/" in path:  # a link to one of the others
            continue
        with open(path, errors="replace") as f:
            lines += f.read().splitlines()
    return lines


def test_simple_task_returns_the_squares(cluster):
    run = cluster.run("simple_task.py")
    assert run.returncode == 0, run.explain()
    assert "Results: [0, 1, 4, 9, 16]" in run.stdout.splitlines(), run.explain()
    assert "Traceback" not in run.stderr, run.explain()


def test_simple_task_runs_on_several_nodes(cluster):
    """Where the five tasks ran, from what their workers wrote (in the nodes' logs)."""
    cluster.run("simple_task.py")
    ran = dict(
        TASK_LINE.search(line).groups()  # type: ignore[union-attr]
        for line in worker_log_lines(cluster.root)
        if TASK_LINE.search(line)
    )
    assert sorted(ran) == ["0", "1", "2", "3", "4"], ran
    assert set(ran.values()) <= cluster.node_ids
    assert len(set(ran.values())) >= 2, f"all five tasks ran on one node: {ran}"


def test_simple_task_prints_from_several_nodes(cluster):
    """What the user reads: a line per task, naming the node it ran on."""
    run = cluster.run("simple_task.py")
    printed = dict(m.groups() for m in TASK_LINE.finditer(run.stdout))
    assert sorted(printed) == ["0", "1", "2", "3", "4"], run.explain()
    assert set(printed.values()) <= cluster.node_ids
    assert len(set(printed.values())) >= 2, run.explain()


def test_counters_print_3_3_3_3(cluster):
    run = cluster.run("counters.py")
    assert run.returncode == 0, run.explain()
    assert run.stdout.splitlines() == ["[3, 3, 3, 3]"], run.explain()
    assert "Traceback" not in run.stderr, run.explain()


def test_forward_pass_sees_the_cluster_and_finishes(cluster):
    run = cluster.run("forward_pass.py")
    assert run.returncode == 0, run.explain()
    lines = run.stdout.splitlines()
    assert lines[0] == "🧠 准备执行 20 批任务，每批输入 100 个特征...", run.explain()
    # The user checks that the program sees all three nodes and their 3 CPUs.
    assert "可用CPU: 3.0，节点数: 3" in lines[1], run.explain()
    assert re.fullmatch(r"✅ 完成。耗时: \d+\.\d\d 秒", lines[2]), run.explain()
    assert len(lines) == 3, run.explain()


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_fake_nn_small_finishes(cluster):
    run = cluster.run("fake_nn_small.py")
    assert run.returncode == 0, run.explain()
    assert re.fullmatch(r"Time used: \d+\.\d\d seconds", run.stdout.strip()), (
        run.explain()
    )
    assert "Traceback" not in run.stderr, run.explain()
