"""Ending a driver while its cluster is busy: silent, and nothing left behind."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap

import psutil
import pytest
from tests.conftest import ember_shm_files, live_children, wait_until

import ember

pytestmark = pytest.mark.multiprocess

NOISE = ("Traceback", "Exception ignored", "Task was destroyed", "Error")


def _processes_of_driver(pid: int) -> list[psutil.Process]:
    """Processes of the embedded cluster a driver with this pid started."""
    mark = f"_{pid}/"
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if mark in " ".join(p.info["cmdline"] or ()) and p.status() != "zombie":
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_a_driver_that_ends_while_actors_are_mid_call_exits_silently(tmp_path):
    # Sync, async and threaded actors mid-call, a call queued behind each, and a
    # wait() that timed out: the script then just ends (atexit shuts down).
    script = textwrap.dedent(
        """
        import asyncio, time
        import ember

        ember.init(num_cpus=2)

        @ember.remote
        class Busy:
            def long(self):
                time.sleep(1000)

        @ember.remote
        class AsyncBusy:
            async def long(self):
                await asyncio.sleep(1000)

        @ember.remote(max_concurrency=4)
        class ThreadedBusy:
            def long(self):
                time.sleep(1000)

        @ember.remote
        def slow():
            time.sleep(1000)

        actors = [Busy.remote() for _ in range(3)]
        actors += [AsyncBusy.remote(), ThreadedBusy.remote()]
        refs = [a.long.remote() for a in actors for _ in range(2)]
        refs += [slow.remote() for _ in range(2)]
        ready, _ = ember.wait(refs, timeout=2)
        assert not ready
        print("driver done", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(tmp_path),
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "driver done" in out
    noisy = [w for w in NOISE if w in err]
    assert not noisy, err
    assert wait_until(lambda: not _processes_of_driver(proc.pid), 20), [
        p.info["cmdline"] for p in _processes_of_driver(proc.pid)
    ]
    assert not glob.glob(f"/dev/shm/ember-session_*_{proc.pid}-*")


def test_shutdown_of_a_busy_cluster_stops_its_daemons_cleanly():
    before_shm = ember_shm_files()
    ember.init(num_cpus=2)
    session_dir = ember.api.init._context()["session_dir"]  # type: ignore[attr-defined]
    daemons = list(ember.api.init._cluster.procs)  # type: ignore[attr-defined]

    @ember.remote
    class Busy:
        def long(self):
            import time

            time.sleep(1000)

    @ember.remote
    def slow():
        import time

        time.sleep(1000)

    actors = [Busy.remote() for _ in range(4)]
    ember.get([a.__ray_ready__.remote() for a in actors], timeout=60)
    calls = [a.long.remote() for a in actors]
    tasks = [slow.remote() for _ in range(6)]  # more than the CPUs: queued, leasing
    ember.shutdown()
    del calls, tasks
    # every daemon stopped on its own after SIGTERM (exit code 0), none was SIGKILLed
    assert [p.returncode for p in daemons] == [0, 0]
    assert wait_until(lambda: not live_children(), 20), [
        p.cmdline() for p in live_children()
    ]
    assert ember_shm_files() == before_shm
    assert not glob.glob(os.path.join(session_dir, "sockets", "*"))
    with open(os.path.join(session_dir, "logs", "node.log")) as f:
        assert "Traceback" not in f.read()
