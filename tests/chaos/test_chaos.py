"""Chaos: a 10k-task workload on a head and two nodes while processes are killed at random.

The cluster is made with ``ember start`` (a head and two joined nodes, each
with 2 CPUs and a small object store) under a private root.  A driver (its
own process) runs, in waves: plain tasks, nested tasks, tasks that make and
check objects of 1 KB to 50 MB (each kept alive for three more waves, more
than the small stores hold, so they spill, and then read again), and calls to
restartable actors; every value is checked against what it must be.  Meanwhile a killer in this process
SIGKILLs random task workers and actor processes, once the control service,
and once one whole non-head node (its daemon and its workers).

Printed at the end: the kills of each kind and how long the workload took to
make progress again after each; what recovery did (tasks the driver retried,
actor calls retried, actors restarted, objects reconstructed, objects
spilled and restored on the nodes alive at the end: ember's internal
counters); and the results that were wrong or lost, which must be 0.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
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

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

STORE = str(200 * 1024 * 1024)  # small: the held objects make the nodes spill
TASKS = int(os.environ.get("CHAOS_TASKS", 10_000))

DRIVER = textwrap.dedent(
    """
    import hashlib, json, os, sys, time
    import numpy as np
    import ember as ray

    ray.init(address="auto")
    TASKS = int(sys.argv[1])
    progress = sys.argv[2]

    @ray.remote(max_retries=-1)
    def square(x):
        return x * x

    @ray.remote(max_retries=-1)
    def nested(x):
        return sum(ray.get([square.remote(x + k) for k in range(3)]))

    @ray.remote(max_retries=-1)
    def make(n, seed):
        return np.random.default_rng(seed).integers(0, 255, n, dtype=np.uint8)

    @ray.remote(max_retries=-1)
    def digest(a):
        return hashlib.sha256(a.tobytes()).hexdigest()

    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class Adder:
        def add(self, x, y):
            return x + y

    def expect_make(n, seed):
        a = np.random.default_rng(seed).integers(0, 255, n, dtype=np.uint8)
        return hashlib.sha256(a.tobytes()).hexdigest()

    actors = [Adder.remote() for _ in range(3)]
    wrong = lost = done = 0
    sizes = [1024, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024, 50 * 1024 * 1024]
    t0 = time.monotonic()
    wave = 0
    history = []
    while done < TASKS:
        wave += 1
        base = wave * 1000
        plain = [square.remote(base + i) for i in range(200)]
        nest = [nested.remote(base + i) for i in range(20)]
        objs = [(sizes[i % len(sizes)], base + i) for i in range(5)]
        made = [make.remote(n, s) for n, s in objs]
        digs = [digest.remote(m) for m in made]
        calls = [actors[i % 3].add.remote(base, i) for i in range(30)]
        # Objects stay alive for three more waves (more than the stores hold, so
        # they spill), then are read again (restored) and let go.
        history.append((made, objs))
        old_made, old_objs = history.pop(0) if len(history) > 3 else ([], [])
        redigs = [digest.remote(m) for m in old_made]
        checks = [
            (plain, [(base + i) ** 2 for i in range(200)]),
            (nest, [sum((base + i + k) ** 2 for k in range(3)) for i in range(20)]),
            (digs, [expect_make(n, s) for n, s in objs]),
            (calls, [base + i for i in range(30)]),
            (redigs, [expect_make(n, s) for n, s in old_objs]),
        ]
        for refs, want in checks:
            for r, w in zip(refs, want):
                try:
                    got = ray.get(r, timeout=300)
                except Exception as exc:
                    lost += 1
                    print("LOST", type(exc).__name__, str(exc)[:4000].replace(chr(10), " | "), flush=True)
                    continue
                if got != w:
                    wrong += 1
        done += 200 + 20 * 4 + 10 + 30
        with open(progress, "w") as f:
            f.write(f"{done} {time.monotonic()}")
    seconds = time.monotonic() - t0

    # What recovery did (ember's internal statistics: this driver's submitters,
    # the control service's actor epochs, every live node's spill counters).
    from ember.api import runtime_access
    from ember.protocol.messages import Empty
    from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def spill_counts():
        w = runtime_access.runtime().cw
        st, _ = w.run(w.node_conn.call("node.get_stats", Empty()))
        return st.spilled_objects, st.restored_objects

    cw = runtime_access.runtime().cw
    listed, _ = cw.run(cw.control.call("control.list_actors", Empty()))
    alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    spills = ray.get([spill_counts.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in alive], timeout=120)
    counts = {
        "tasks_retried": cw.tasks.retried,
        "actor_calls_retried": cw.actor_calls.retried,
        "actors_restarted": sum(max(a.epoch - 1, 0) for a in listed.actors),
        "objects_reconstructed": cw.objects.recovery.reconstructions,
        "objects_spilled": sum(s[0] for s in spills),
        "objects_restored": sum(s[1] for s in spills),
    }
    print("RESULT", json.dumps({"tasks": done, "wrong": wrong, "lost": lost,
                                "seconds": seconds, **counts}), flush=True)
    """
)


class Killer(threading.Thread):
    """Kills random processes of the cluster until stopped; counts and times recoveries."""

    def __init__(self, root: str, progress: str, victim_node_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.progress = progress
        self.victim_node_pid = victim_node_pid
        self.stop = threading.Event()
        self.kills: dict[str, int] = {}
        self.recovery: dict[str, list[float]] = {}
        self.rng = random.Random(int(os.environ.get("CHAOS_SEED", "7")))

    def _procs(self, pattern: str) -> list[psutil.Process]:
        """The cluster's processes whose command line matches (workers included:
        setproctitle hides their environment, so they are found as children)."""
        seen: dict[int, psutil.Process] = {}
        for p in processes_under(self.root):
            seen[p.pid] = p
            try:
                for c in p.children(recursive=True):
                    seen[c.pid] = c
            except psutil.NoSuchProcess:
                pass
        out = []
        for p in seen.values():
            try:
                if re.search(pattern, " ".join(p.cmdline())):
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def _done(self) -> int:
        try:
            with open(self.progress) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def _kill(self, kind: str, procs: list[psutil.Process]) -> None:
        if not procs:
            return
        before = self._done()
        t0 = time.monotonic()
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.kills[kind] = self.kills.get(kind, 0) + 1
        # Recovery: the driver finished another wave after the kill.
        while not self.stop.is_set() and self._done() <= before:
            if time.monotonic() - t0 > 300:
                break
            time.sleep(0.05)
        self.recovery.setdefault(kind, []).append(time.monotonic() - t0)

    def run(self) -> None:
        plan = ["worker"] * 8 + ["actor"] * 4 + ["control", "node"]
        self.rng.shuffle(plan)
        for kind in plan:
            if self.stop.wait(self.rng.uniform(1.0, 3.0)):
                return
            if kind == "worker":
                ws = self._procs(r"^ember::(square|nested|make|digest)")
                self._kill(kind, ws[:1] if not ws else [self.rng.choice(ws)])
            elif kind == "actor":
                acts = self._procs(r"^ember::Adder")
                self._kill(kind, [self.rng.choice(acts)] if acts else [])
            elif kind == "control":
                self._kill(kind, self._procs(r"ember\.control(?!.*--supervise)"))
            else:
                node = psutil.Process(self.victim_node_pid)
                try:
                    victims = [node, *node.children(recursive=True)]
                except psutil.NoSuchProcess:
                    victims = []
                self._kill(kind, victims)


def test_chaos_workload_loses_nothing():
    root = make_root("emch")
    env = env_for(root)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env, capture_output=True, text=True, timeout=120
        )

    try:
        common = ("--node-ip-address", "127.0.0.1", "--num-cpus", "2",
                  "--object-store-memory", STORE)  # fmt: skip
        out = cli("start", "--head", "--port", "0", *common)
        assert out.returncode == 0, out.stderr
        address = re.search(r"ember start --address='([^']+)'", out.stdout)
        assert address, out.stdout
        before = {p.pid for p in processes_under(root)}
        out = cli("start", f"--address={address.group(1)}", *common)
        assert out.returncode == 0, out.stderr
        victim = next(
            p.pid
            for p in processes_under(root)
            if p.pid not in before and "ember.node" in " ".join(p.cmdline())
        )
        out = cli("start", f"--address={address.group(1)}", *common)
        assert out.returncode == 0, out.stderr
        path = os.path.join(root, "driver.py")
        with open(path, "w") as f:
            f.write(DRIVER)
        progress = os.path.join(root, "progress")
        drv = subprocess.Popen(
            [sys.executable, path, str(TASKS), progress],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert wait_until(lambda: os.path.exists(progress), 120), "no progress"
        killer = Killer(root, progress, victim)
        killer.start()
        try:
            stdout, stderr = drv.communicate(timeout=800)
        finally:
            killer.stop.set()
            killer.join(30)
            if drv.poll() is None:
                drv.kill()
                drv.communicate()
        line = next((ln for ln in stdout.splitlines() if ln.startswith("RESULT")), "")
        assert line, (stdout[-3000:], stderr[-3000:])
        result = json.loads(line.split(" ", 1)[1])
        result["kills"] = killer.kills
        result["recovery_s"] = {
            k: [round(x, 2) for x in v] for k, v in killer.recovery.items()
        }
        print("CHAOS", json.dumps(result))
        assert result["wrong"] == 0, result
        assert result["lost"] == 0, (
            result,
            [ln for ln in stdout.splitlines() if ln.startswith("LOST")],
        )
        assert sum(killer.kills.values()) >= 5, killer.kills
    finally:
        # the daemons of a killed node may need the forced stop
        left = clean_up(root, survivors_ok=True)
    assert not left, left
