"""A head that comes back: ``kill -9`` of the control service under a running workload.

``ember start --head`` supervises its control service; the tests kill the
service (the supervisor's child) with SIGKILL while a driver runs tasks, actor
calls and puts, and check what a user would: the driver finishes with every
value right, the cluster serves a new driver, ``ember status`` lists the node.
When the head never comes back, nodes and drivers give up after
``EMBER_HEAD_RECONNECT_TIMEOUT_S`` with a message that says so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from tests.integration.cli_cluster import (
    CLI,
    clean_up,
    env_for,
    make_root,
    processes_under,
    wait_until,
)

pytestmark = pytest.mark.multiprocess

WORKLOAD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import ember as ray

    ray.init(address="auto")

    @ray.remote(max_retries=3)
    def square(x):
        return x * x

    @ray.remote
    def total(a):
        return int(a.sum())

    @ray.remote
    class Counter:
        def __init__(self):
            self.n = 0
        def incr(self):
            self.n += 1
            return self.n

    c = Counter.remote()
    i = 0
    go = sys.argv[1]
    while not os.path.exists(go) or i < 50:
        if i == 50:
            print("RUNNING", flush=True)
        assert ray.get(square.remote(i)) == i * i
        assert ray.get(c.incr.remote()) == i + 1
        if i % 10 == 0:
            a = np.full(300_000, i, dtype=np.int64)
            assert ray.get(total.remote(ray.put(a))) == i * 300_000
        i += 1
    # After the restart: what needs the head works again.
    d = Counter.remote()
    assert ray.get(d.incr.remote()) == 1
    print("DONE", i, flush=True)
    """
)


class Head:
    """A head started with ``ember start --head`` under a private root."""

    def __init__(self, root: str, **env: str) -> None:
        self.root = root
        self.env = env_for(root, **env)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def control_child(self) -> psutil.Process | None:
        """The control service the supervisor runs (not the supervisor)."""
        for p in processes_under(self.root):
            try:
                cmd = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if "ember.control" in cmd and "--supervise" not in cmd:
                return p
        return None

    def driver(self, script: str, *args: str) -> subprocess.Popen[str]:
        path = os.path.join(self.root, "driver.py")
        with open(path, "w") as f:
            f.write(script)
        return subprocess.Popen(
            [sys.executable, path, *args],
            env=self.env,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def head(request):
    root = make_root("emhd")
    h = Head(root, **getattr(request, "param", {}))
    try:
        out = h.cli(
            "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
            "--num-cpus", "2", "--object-store-memory", str(200 * 1024 * 1024),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        yield h
    finally:
        left = clean_up(root)
    assert not left, left


def _gone(p: psutil.Process) -> bool:
    """Exited (a zombie counts: its parent may be stopped)."""
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_line(proc: subprocess.Popen[str], want: str, timeout_s: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(want):
            return line
    raise AssertionError(f"no {want!r} line; got {seen!r}")


def test_killed_control_service_comes_back_and_the_workload_completes(head):
    go = os.path.join(head.root, "go")
    drv = head.driver(WORKLOAD, go)
    try:
        _wait_line(drv, "RUNNING", 120)
        first = head.control_child()
        assert first is not None
        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert wait_until(
            lambda: (p := head.control_child()) is not None and p.pid != first.pid, 30
        ), "the supervisor did not restart the control service"
        status = None

        def serving() -> bool:  # the control service answers and the node is back
            nonlocal status
            status = head.cli("status")
            return status.returncode == 0 and "node_" in status.stdout.split("Dead:")[0]

        assert wait_until(serving, 60), status
        print(f"serving again {time.monotonic() - killed_at:.2f}s after the kill")
        alive = status.stdout.split("Alive:")[1].split("Dead:")[0]
        assert len(re.findall(r"node_[0-9a-f]{32}", alive)) == 1, status.stdout
        with open(go, "w"):
            pass
        out, err = drv.communicate(timeout=120)
    finally:
        if drv.poll() is None:
            drv.kill()
            drv.communicate()
    assert drv.returncode == 0, err
    assert re.search(r"^DONE \d+$", out, re.M), out
    # A new driver is served by the restarted control service.
    second = head.driver(
        "import ember as ray\nray.init(address='auto')\n"
        "print('SUM', sum(ray.get([ray.remote(lambda x: x).remote(i) for i in range(10)])))\n"
    )
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "SUM 45" in out


@pytest.mark.parametrize(
    "head", [{"EMBER_HEAD_RECONNECT_TIMEOUT_S": "3"}], indirect=True
)
def test_a_head_that_never_comes_back_stops_nodes_and_fails_drivers_clearly(head):
    script = textwrap.dedent(
        """
        import sys, ember as ray
        ray.init(address="auto")
        print("UP", flush=True)
        sys.stdin.readline()
        try:
            ray.get_actor("nobody")
        except Exception as exc:
            print("ERROR", type(exc).__name__, exc, flush=True)
        """
    )
    drv = subprocess.Popen(
        [sys.executable, "-c", script],
        env=head.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_line(drv, "UP", 120)
        # Kill the supervisor first (no restart), then its child.
        child = head.control_child()
        assert child is not None
        child.parent().send_signal(signal.SIGKILL)
        child.send_signal(signal.SIGKILL)

        def node_gone() -> bool:
            for p in processes_under(head.root):
                try:
                    if "ember.node" in " ".join(p.cmdline()):
                        return False
                except psutil.Error:  # exited meanwhile (a zombie, or gone)
                    pass
            return True

        assert wait_until(node_gone, 60), "the node daemon did not give up"
        assert drv.stdin is not None
        drv.stdin.write("\n")
        drv.stdin.flush()
        out, err = drv.communicate(timeout=120)
    finally:
        if drv.poll() is None:
            drv.kill()
            drv.communicate()
    assert "ERROR" in out, (out, err)
    assert "EMBER_HEAD_RECONNECT_TIMEOUT_S" in out, out


ACTORS = textwrap.dedent(
    """
    import os, sys, ember as ray
    ray.init(address="auto", namespace="hr")

    @ray.remote
    class Counter:
        def __init__(self):
            self.n = 0
        def incr(self):
            self.n += 1
            return self.n
        def pid(self):
            return os.getpid()

    keeper = Counter.options(name="keeper", lifetime="detached").remote()
    plain = Counter.options(max_restarts=1).remote()
    victim = Counter.options(max_restarts=1).remote()
    for a in (keeper, plain, victim):
        ray.get(a.incr.remote())
    pids = [ray.get(a.pid.remote()) for a in (keeper, plain, victim)]
    pg = ray.util.placement_group([{"CPU": 0.5}])
    ray.get(pg.ready(), timeout=60)
    print("PIDS", *pids, flush=True)
    sys.stdin.readline()
    # the placement group is still there, and tasks run in it
    PlacementGroupSchedulingStrategy = (
        ray.util.scheduling_strategies.PlacementGroupSchedulingStrategy
    )
    assert ray.util.placement_group_table(pg)["state"] == "CREATED"
    ray.get(pg.ready(), timeout=60)
    in_pg = ray.remote(lambda: "in group").options(
        num_cpus=0.5, scheduling_strategy=PlacementGroupSchedulingStrategy(pg)
    )
    assert ray.get(in_pg.remote(), timeout=60) == "in group"
    # keeper and plain lived on through the restart: same process, same state
    assert ray.get(keeper.pid.remote()) == pids[0]
    assert ray.get(keeper.incr.remote()) == 2
    assert ray.get(plain.incr.remote()) == 2
    # victim died while the head was away: restarted once the head was back
    n = None
    for _ in range(50):
        try:
            n = ray.get(victim.incr.remote())
            break
        except ray.exceptions.RayActorError:
            pass
    assert n == 1, n
    assert ray.get(victim.pid.remote()) != pids[2]
    assert ray.get(ray.get_actor("keeper").pid.remote()) == pids[0]
    ray.kill(plain)
    print("DONE", flush=True)
    """
)


def test_actors_survive_a_restart_and_deaths_meanwhile_are_handled(head):
    drv = subprocess.Popen(
        [sys.executable, "-c", ACTORS],
        env=head.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(p) for p in _wait_line(drv, "PIDS", 120).split()[1:]]
        child = head.control_child()
        assert child is not None
        supervisor = child.parent()
        # Hold the supervisor so the head stays away while an actor dies.
        supervisor.suspend()
        try:
            child.send_signal(signal.SIGKILL)
            assert wait_until(lambda: _gone(child), 30)
            os.kill(pids[2], signal.SIGKILL)
            assert wait_until(lambda: not psutil.pid_exists(pids[2]), 30)
        finally:
            supervisor.resume()

        def serving() -> bool:
            return head.cli("status").returncode == 0

        assert wait_until(serving, 60)
        assert drv.stdin is not None
        drv.stdin.write("\n")
        drv.stdin.flush()
        out, err = drv.communicate(timeout=120)
    finally:
        if drv.poll() is None:
            drv.kill()
            drv.communicate()
    assert drv.returncode == 0, err
    assert "DONE" in out, (out, err)
    assert not psutil.pid_exists(pids[1]) or wait_until(
        lambda: not psutil.pid_exists(pids[1]), 30
    ), "the recovered actor was not killed by ray.kill"
    # The detached actor is still there for the next driver.
    other = subprocess.run(
        [sys.executable, "-c",
         "import ember as ray\nray.init(address='auto', namespace='hr')\n"
         "print('PID', ray.get(ray.get_actor('keeper').pid.remote()))"],
        env=head.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert f"PID {pids[0]}" in other.stdout, other.stderr


def test_a_node_that_died_while_the_head_was_away_is_listed_dead(head):
    status = head.cli("status")
    address = re.search(r"Control service: (\S+)", status.stdout)
    assert address, status.stdout
    before = {p.pid for p in processes_under(head.root)}
    out = head.cli(
        "start", f"--address={address.group(1)}", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    daemon = next(
        p
        for p in processes_under(head.root)
        if p.pid not in before and "ember.node" in " ".join(p.cmdline())
    )
    ids = re.findall(r"node_([0-9a-f]+)", head.cli("status").stdout)
    assert len(ids) == 2, ids
    child = head.control_child()
    assert child is not None
    supervisor = child.parent()
    supervisor.suspend()  # the head stays away while the node dies
    try:
        child.send_signal(signal.SIGKILL)
        assert wait_until(lambda: _gone(child), 30)
        victims = [daemon, *daemon.children(recursive=True)]
        for p in victims:
            p.send_signal(signal.SIGKILL)
        assert wait_until(lambda: all(_gone(p) for p in victims), 30)
    finally:
        supervisor.resume()

    def dead_listed() -> bool:
        st = head.cli("status").stdout
        dead = st.split("Dead:", 1)[-1].split("Resources", 1)[0]
        return "while the head was away" in dead and len(re.findall("node_", dead)) == 1

    assert wait_until(dead_listed, 90, interval_s=0.5), head.cli("status").stdout
