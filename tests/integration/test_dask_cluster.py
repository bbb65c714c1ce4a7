"""Dask and joblib on a two-node cluster made with ``ember start`` (head + one node).

The user's program (``dask_driver.py``) connects with ``EMBER_ADDRESS=auto``
and prints what it found; the answers must equal Dask's and scikit-learn's own
local runs, persisted arrays must be refs, and Dask tasks must have run on
both nodes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root

pytest.importorskip("dask.dataframe")
pytest.importorskip("dask.bag")
pytest.importorskip("sklearn")

# slow: the default run stays under 15 minutes on 2 cores (.ci/run runs -m slow)
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dask_driver.py")
STORE = str(512 * 1024 * 1024)


def _cli(root, *args):
    return subprocess.run(
        [*CLI, *args], env=env_for(root), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def run():
    root = make_root("emdk")
    try:
        common = ("--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                  "--object-store-memory", STORE)  # fmt: skip
        out = _cli(root, "start", "--head", "--port", "0", *common)
        assert out.returncode == 0, out.stderr
        address = re.search(r"ember start --address='([^']+)'", out.stdout)
        assert address, out.stdout
        out = _cli(root, "start", f"--address={address.group(1)}", *common)
        assert out.returncode == 0, out.stderr
        status = _cli(root, "status")
        alive = status.stdout.split("Alive:")[1].split("Dead:")[0]
        node_ids = set(re.findall(r"node_([0-9a-f]{32})", alive))
        assert len(node_ids) == 2, status.stdout
        proc = subprocess.run(
            [sys.executable, DRIVER],
            env=env_for(root, EMBER_ADDRESS="auto"),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
        yield json.loads(proc.stdout.strip().splitlines()[-1]), node_ids
    finally:
        problems = clean_up(root)
    assert not problems, problems


def test_the_seed_program_gives_dasks_answer_on_the_cluster(run):
    out, _ = run
    assert out["seed_sum"] == out["seed_sum_local"] == 1_000_000


def test_a_dataframe_groupby_gives_dasks_answer(run):
    out, _ = run
    assert out["groupby_equal"]
    assert out["groupby_index_equal"]


def test_a_bag_word_count_gives_dasks_answer(run):
    out, _ = run
    assert out["bag_equal"]


def test_persist_keeps_refs_on_the_cluster(run):
    out, _ = run
    assert out["persisted_refs"] == 10
    assert out["persisted_sum"] == sum(range(1, 1001))


def test_dask_tasks_with_spread_run_on_both_nodes(run):
    out, node_ids = run
    assert set(out["task_nodes"]) == node_ids


def test_grid_search_through_joblib_runs_on_the_cluster(run):
    out, _ = run
    assert out["grid_equal"]
    assert not out["joblib_in_driver"]
