"""The memory monitor and worker death causes, with real processes and real kills.

The machine is never at risk: the OOM tests count only the node's own
processes (``EMBER_MEMORY_MONITOR_SCOPE=node``, so other programs on this
shared machine do not matter), set the threshold 400 MB above what an idle
cluster's processes use, and a runaway task allocates at most 1 GB in 50 MB
steps, so the monitor kills it long before it stops.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from tests.conftest import wait_until

import ember
from ember.exceptions import ActorDiedError, OutOfMemoryError, WorkerCrashedError
from ember.node.memory_monitor import (
    REFRESH_ENV,
    SCOPE_ENV,
    THRESHOLD_ENV,
    read_node_memory,
)
from ember.protocol.messages import Empty

pytestmark = pytest.mark.multiprocess

MB = 1024 * 1024
#: how far above the memory in use at start the threshold is set
HEADROOM_BYTES = 400 * MB


def node_daemon_pid() -> int:
    for p in psutil.Process().children(recursive=True):
        if "ember.node" in " ".join(p.cmdline()):
            return p.pid
    raise AssertionError("no node daemon among this driver's children")


def low_threshold() -> float:
    """Just above what the processes of an idle two-CPU cluster's node use."""
    ember.init(num_cpus=2)
    try:
        assert wait_until(lambda: ember.available_resources().get("CPU") == 2, 30)
        sample = read_node_memory(node_daemon_pid())
    finally:
        ember.shutdown()
    return min(0.99, (sample.used_bytes + HEADROOM_BYTES) / sample.total_bytes)


@pytest.fixture
def oom_cluster(monkeypatch: pytest.MonkeyPatch):
    # The node daemon reads the knobs from the environment it inherits.
    monkeypatch.setenv(THRESHOLD_ENV, f"{low_threshold():.4f}")
    monkeypatch.setenv(REFRESH_ENV, "100")
    monkeypatch.setenv(SCOPE_ENV, "node")
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


@pytest.fixture
def cluster():
    ember.init(num_cpus=1)
    yield
    ember.shutdown()


def eat_memory(wait_for: str = "") -> str:
    """Allocate up to 1 GB in touched 50 MB steps, then hold it (the monitor kills us)."""
    deadline = time.monotonic() + 60
    while wait_for and not os.path.exists(wait_for) and time.monotonic() < deadline:
        time.sleep(0.02)
    chunks = []
    for _ in range(20):
        chunks.append(b"\x01" * (50 * MB))
        time.sleep(0.05)
    time.sleep(30)
    return f"not killed, holding {len(chunks) * 50} MB"


@ember.remote(max_retries=1)
def hog(attempts: str, wait_for: str = "") -> str:
    with open(attempts, "a") as f:
        f.write(f"{os.getpid()}\n")
    return eat_memory(wait_for)


@ember.remote(max_retries=0)
def bystander(ready: str, release: str) -> int:
    keep = b"\x01" * (20 * MB)
    with open(ready, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 90
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(keep)


@ember.remote(max_restarts=0)
class Hungry:
    def eat(self) -> str:
        return eat_memory()


@ember.remote
def ping() -> str:
    return "pong"


def memory_kills() -> int:
    from ember.api.runtime_access import runtime

    cw = runtime().cw  # type: ignore[attr-defined]
    stats, _ = cw.loop_thread.run(cw.node_conn.call("node.get_stats", Empty()), 30)
    return int(stats.memory_kills)


def node_survived() -> None:
    assert ember.get(ping.remote(), timeout=60) == "pong"
    assert [n["Alive"] for n in ember.nodes()] == [True]


def test_runaway_task_is_killed_retried_then_fails_with_out_of_memory(
    oom_cluster, tmp_path
):
    attempts = tmp_path / "attempts"
    with pytest.raises(OutOfMemoryError) as info:
        ember.get(hog.remote(str(attempts)), timeout=180)
    msg = str(info.value)
    assert "hog" in msg
    assert "memory monitor" in msg
    assert "threshold" in msg
    assert "PID\tRSS(GB)\tNAME" in msg
    assert THRESHOLD_ENV in msg
    assert "max_retries" in msg
    pids = attempts.read_text().split()
    assert len(pids) == 2  # the first run and one retry (max_retries=1)
    assert pids[-1] in msg  # the victim's pid is named
    assert memory_kills() == 2
    node_survived()  # the daemon (and this driver) are alive and serve


def test_non_retriable_task_is_chosen_last(oom_cluster, tmp_path):
    attempts, ready, release = (tmp_path / n for n in ("attempts", "ready", "release"))
    greedy = hog.remote(str(attempts), str(ready))
    assert wait_until(attempts.exists, 60)  # the hog holds the older lease
    safe = bystander.remote(str(ready), str(release))  # non-retriable, newest lease
    with pytest.raises(OutOfMemoryError):
        ember.get(greedy, timeout=180)
    release.touch()
    assert ember.get(safe, timeout=60) == 20 * MB  # never killed
    assert memory_kills() == 2
    node_survived()


def test_actor_killed_by_the_monitor_says_out_of_memory(oom_cluster):
    actor = Hungry.remote()
    with pytest.raises(ActorDiedError):
        ember.get(actor.eat.remote(), timeout=180)
    # The actor's death cause (what later calls report) names the monitor.
    with pytest.raises(ActorDiedError) as info:
        ember.get(actor.eat.remote(), timeout=60)
    assert "memory monitor" in str(info.value)
    assert memory_kills() == 1
    node_survived()


@ember.remote(max_retries=0)
def sleeper(pid_file: str) -> None:
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_worker_crashed_error_names_the_signal_that_killed_it(cluster, tmp_path, sig):
    pid_file = tmp_path / "pid"
    ref = sleeper.remote(str(pid_file))
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text(), 60)
    os.kill(int(pid_file.read_text()), sig)
    with pytest.raises(WorkerCrashedError) as info:
        ember.get(ref, timeout=60)
    assert f"killed by {sig.name}" in str(info.value)
    assert "OutOfMemory" not in type(info.value).__name__
