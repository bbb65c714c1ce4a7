"""A detached actor's handle, pickled by one job, works in another (as in Ray).

Driver 1 creates a detached named actor, pickles its handle to a file and
exits; driver 2 (another job on the same ``ember start`` cluster) unpickles
the bytes and calls the actor, and also finds it by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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

FIRST = textwrap.dedent(
    """
    import pickle, sys
    import ember as ray

    ray.init(address="auto", namespace="xjob")

    @ray.remote(num_cpus=0)
    class Store:
        def __init__(self):
            self.d = {}
        def put(self, k, v):
            self.d[k] = v
            return len(self.d)
        def get(self, k):
            return self.d.get(k)

    s = Store.options(name="store", lifetime="detached").remote()
    assert ray.get(s.put.remote("a", 1), timeout=60) == 1
    anon = Store.options(lifetime="detached").remote()
    assert ray.get(anon.put.remote("z", 9), timeout=60) == 1
    with open(sys.argv[1], "wb") as f:
        pickle.dump((s, anon), f)
    print("JOB", ray.get_runtime_context().get_job_id(), flush=True)
    ray.shutdown()
    """
)

SECOND = textwrap.dedent(
    """
    import pickle, sys
    import ember as ray

    ray.init(address="auto", namespace="xjob")
    with open(sys.argv[1], "rb") as f:
        s, anon = pickle.load(f)
    assert ray.get(s.get.remote("a"), timeout=60) == 1
    assert ray.get(s.put.remote("b", 2), timeout=60) == 2
    assert ray.get(ray.get_actor("store").get.remote("b"), timeout=60) == 2
    assert ray.get(anon.get.remote("z"), timeout=60) == 9
    ray.kill(s)
    ray.kill(anon)
    print("JOB", ray.get_runtime_context().get_job_id(), flush=True)
    ray.shutdown()
    """
)


@pytest.fixture
def cluster_env():
    root = make_root("emxj")
    env = env_for(root)
    try:
        out = subprocess.run(
            [*CLI, "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
             "--num-cpus", "1", "--object-store-memory", str(100 * 1024 * 1024)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        yield root, env
    finally:
        survivors = stop_everything_under(root)
        stray = processes_under(root)
        leaked = remove_root(root)
    assert not survivors, f"'ember stop --force' left {survivors} running"
    assert not stray, stray
    assert not leaked, f"shared-memory arenas left behind: {leaked}"


def _driver(root: str, env: dict[str, str], script: str, *args: str) -> str:
    path = os.path.join(root, "driver.py")
    with open(path, "w") as f:
        f.write(script)
    done = subprocess.run(
        [sys.executable, path, *args],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_detached_actor_handle_pickled_in_one_job_works_in_another(cluster_env):
    root, env = cluster_env
    blob = os.path.join(root, "handles.pkl")
    first = _driver(root, env, FIRST, blob)
    second = _driver(root, env, SECOND, blob)
    jobs = [
        line.split()[1]
        for line in (first + second).splitlines()
        if line.startswith("JOB")
    ]
    assert len(jobs) == 2
    assert jobs[0] != jobs[1]  # two jobs
