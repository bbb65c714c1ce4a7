"""Log files and progress bars as Ray 2.60 has them (passes on Ray through the shim)."""

from __future__ import annotations

import os
import re

import pytest

import ember as ray
from ember.experimental import tqdm_ray
from ember.util.state import get_log, list_logs


def test_list_logs_needs_a_node():
    with pytest.raises(AssertionError):
        list_logs()


@pytest.mark.cluster_only("local mode has no worker processes and no log files")
def test_an_actors_output_is_in_its_worker_file(ray_start_regular, wait_for):
    @ray.remote
    class Scribe:
        def write(self, text):
            print(text, flush=True)
            ctx = ray.get_runtime_context()
            return os.getpid(), ctx.get_actor_id(), ctx.get_node_id()

    pid, actor_id, node_id = ray.get(Scribe.remote().write.remote("scribe-line-5150"))
    # this cluster's address (other clusters may run on the machine)
    address = ray.get_runtime_context().gcs_address
    pattern = re.compile(rf"worker-[0-9a-f]+-[0-9a-f]+-{pid}\.out$")

    def listed():
        return any(
            pattern.search(f)
            for f in list_logs(address=address, node_id=node_id).get("worker_out", [])
        )

    wait_for(listed, timeout=120, message="the actor's .out file is listed")

    def has_line():
        return "scribe-line-5150" in "".join(
            get_log(address=address, actor_id=actor_id, tail=-1)
        )

    wait_for(
        has_line, timeout=120, message="get_log(actor_id=...) has the actor's print"
    )
    assert "scribe-line-5150" in "".join(
        get_log(address=address, node_id=node_id, pid=pid)
    )


def test_tqdm_ray_in_the_driver_counts(monkeypatch):
    for var in ("EMBER_TQDM_PATCH_PRINT", "RAY_TQDM_PATCH_PRINT"):
        monkeypatch.setenv(var, "0")  # leave this process's print alone
    bar = tqdm_ray.tqdm(range(3), desc="count", flush_interval_s=0)
    assert bar.total == 3
    assert list(bar) == [0, 1, 2]
    assert bar.n == 3
    bar.n = 1
    bar.total = 10
    assert (bar.n, bar.total) == (1, 10)
    bar.close()
    with pytest.raises(ValueError):
        list(tqdm_ray.tqdm(total=2))
