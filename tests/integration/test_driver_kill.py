"""A driver killed with ``kill -9`` leaves nothing of its own on the cluster.

Its non-detached actors, placement groups and the objects it owned (put by it
or returned to it by tasks, in memory or spilled, on every node) are released;
a detached actor that borrowed one of its objects gets ``OwnerDiedError``.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.api import runtime_access
from ember.cluster_utils import Cluster
from ember.common import session
from ember.exceptions import OwnerDiedError
from ember.protocol.messages import Empty
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = pytest.mark.multiprocess

MB = 1024 * 1024
STORE = 96 * MB

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import ember as ray

    ray.init(address=sys.argv[1], namespace="victim")
    on_b = {"resources": {"b": 0.1}}

    @ray.remote
    def make(i):
        return np.full(4 * 1024 * 1024, i, dtype=np.int64)  # 32 MB, made on node b

    @ray.remote
    class Holder:
        def pid(self):
            return os.getpid()

    @ray.remote(num_cpus=0)
    class Borrower:
        def keep(self, refs):
            self.refs = refs
            return True
        def read(self):
            return int(ray.get(self.refs[0], timeout=30)[0])

    # 6 x 32 MB put here: twice the head's store, so some are spilled
    puts = [ray.put(np.full(4 * 1024 * 1024, i, dtype=np.int64)) for i in range(6)]
    made = [make.options(**on_b).remote(i) for i in range(4)]  # twice node b's store
    ray.wait(made, num_returns=len(made), timeout=120)
    holder = Holder.remote()
    borrower = Borrower.options(name="borrower", lifetime="detached").remote()
    assert ray.get(borrower.keep.remote([puts[0]]), timeout=60)
    assert ray.get(borrower.read.remote(), timeout=60) == 0
    pg = ray.util.placement_group([{"CPU": 0.5}])
    ray.get(pg.ready(), timeout=60)
    print("READY", ray.get(holder.pid.remote(), timeout=60), pg.id.hex(), flush=True)
    time.sleep(3600)
    """
)


@ember.remote(num_cpus=0)
def stats_here():
    """This node's store statistics (a task pinned to a node reads its own)."""
    cw = runtime_access.runtime().cw  # type: ignore[attr-defined]
    reply, _ = cw.run(cw.node_conn.call("node.get_stats", Empty()))
    return reply.store_objects, reply.store_used, reply.spilled_objects


def spill_files(folder: str) -> list[str]:
    return glob.glob(os.path.join(folder, "**", "*.spill"), recursive=True)


@pytest.fixture
def cluster(monkeypatch):
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "object_store_memory": STORE},
        shutdown_at_exit=False,
    )
    yield c
    if ember.is_initialized():
        ember.shutdown()
    folders = [os.path.join(n.session_dir, "spill") for n in c.list_all_nodes()]
    c.shutdown()
    assert wait_until(lambda: not live_children())
    assert not [f for f in folders if spill_files(f)]


def test_a_killed_driver_leaves_nothing_behind(cluster, tmp_path):
    b = cluster.add_node(num_cpus=1, resources={"b": 1}, object_store_memory=STORE)
    cluster.wait_for_nodes()
    nodes = cluster.list_all_nodes()
    script = tmp_path / "victim.py"
    script.write_text(DRIVER)
    victim = subprocess.Popen(
        [sys.executable, str(script), cluster.address],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = victim.stdout.readline() if victim.stdout else ""
        assert line.startswith("READY"), f"the driver did not get ready: {line!r}"
        _, holder_pid, pg_hex = line.split()
        assert psutil.pid_exists(int(holder_pid))
        assert any(spill_files(os.path.join(n.session_dir, "spill")) for n in nodes)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        killed_at = time.monotonic()

        cluster.connect(namespace="victim")

        def stats() -> list[tuple[int, int, int]]:
            return ember.get(
                [
                    stats_here.options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(
                            n.node_id, soft=False
                        )
                    ).remote()
                    for n in nodes
                ],
                timeout=60,
            )

        def released() -> bool:
            return (
                not psutil.pid_exists(int(holder_pid))
                and all(s[:2] == (0, 0) for s in stats())
                and not any(
                    spill_files(os.path.join(n.session_dir, "spill")) for n in nodes
                )
            )

        assert wait_until(released, timeout_s=30, interval_s=0.2), stats()
        print(f"released {time.monotonic() - killed_at:.2f} s after the kill")
        table = ember.util.placement_group_table()
        assert table[pg_hex]["state"] == "REMOVED"
        borrower = ember.get_actor("borrower")
        with pytest.raises(OwnerDiedError):
            ember.get(borrower.read.remote(), timeout=60)
        ember.kill(borrower)
        assert b.node_id in {n.node_id for n in nodes}
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout=30)
