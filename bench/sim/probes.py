"""What the scale harness measures with, outside the driver: probes and processes.

* :class:`Simulators` starts and stops node simulator processes and talks to
  them (``stats``, ``kill I``, ``hold``/``release``) over their stdin/stdout.
* :class:`Watcher` is one more simulated node in the harness's own process, on
  an event loop thread: it sees what every node sees (``node.cluster_changed``
  and its refreshed :class:`ClusterView`) and what every driver sees
  (``worker.node_died``), and stamps when each change arrives.
* :func:`cpu_rss` samples a process (the control service) with psutil.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import psutil

from ember.protocol.messages import NodeDiedMessage
from sim.node import SimNode

BENCH = Path(__file__).resolve().parents[1]
#: the label of the harness's own simulated nodes (the watcher, the joiners)
PROBE_LABEL = "ember.io/probe"
SRC = BENCH.parent / "src"


def cpu_rss(pid: int) -> tuple[float, int]:
    """``(user + system CPU seconds, RSS bytes)`` of process ``pid``."""
    p = psutil.Process(pid)
    t = p.cpu_times()
    return t.user + t.system, p.memory_info().rss


class Simulators:
    """Node simulator processes (``python -m sim``), ``per_process`` nodes each."""

    def __init__(self, control: str, token: str, resources: dict[str, float]) -> None:
        self.control = control
        self.token = token
        self.resources = resources
        self.procs: list[subprocess.Popen[str]] = []
        #: per process, its node ids (hex), in index order
        self.node_ids: list[list[str]] = []

    def start(self, n: int, per_process: int, timeout_s: float = 600.0) -> float:
        """Start processes for ``n`` nodes; the seconds until every node registered."""
        env = dict(os.environ)
        env["EMBER_AUTH_TOKEN"] = self.token
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(BENCH)])
        t0 = time.perf_counter()
        first = len(self.procs)
        left = n
        while left > 0:
            k = min(per_process, left)
            left -= k
            cmd = [
                sys.executable,
                "-m",
                "sim",
                "--control",
                self.control,
                "--nodes",
                str(k),
                "--resources",
                json.dumps(self.resources),
                "--index-base",
                str(sum(len(x) for x in self.node_ids)),
            ]
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
            self.node_ids.append([])
        for i in range(first, len(self.procs)):
            line = self._read(i, timeout_s - (time.perf_counter() - t0))
            if not line.startswith("READY "):
                raise RuntimeError(f"simulator {i} did not start: {line!r}")
            self.node_ids[i] = json.loads(line[6:])["nodes"]
        return time.perf_counter() - t0

    def _read(self, i: int, timeout_s: float) -> str:
        p = self.procs[i]
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], max(timeout_s, 0.0))
        if not ready:
            raise TimeoutError(f"simulator {i} said nothing for {timeout_s:.0f} s")
        return p.stdout.readline().strip()

    def ask(self, i: int, command: str, timeout_s: float = 60.0) -> dict[str, Any]:
        p = self.procs[i]
        assert p.stdin is not None
        p.stdin.write(command + "\n")
        p.stdin.flush()
        line = self._read(i, timeout_s)
        if not line:
            raise RuntimeError(f"simulator {i} exited (code {p.poll()})")
        out: dict[str, Any] = json.loads(line)
        return out

    def ask_all(self, command: str) -> list[dict[str, Any]]:
        return [self.ask(i, command) for i in range(len(self.procs))]

    def total(self, key: str) -> int:
        return sum(int(s.get(key, 0)) for s in self.ask_all("stats"))

    @property
    def nodes(self) -> int:
        return sum(len(x) for x in self.node_ids)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None and p.stdin is not None:
                try:
                    p.stdin.write("quit\n")
                    p.stdin.flush()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        self.node_ids.clear()


class Watcher:
    """A simulated node of the harness's own, stamping the changes it is told of."""

    def __init__(self, control: str, token: str) -> None:
        self.control = control
        self.token = token.encode()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.node: SimNode | None = None
        #: node id -> when this process heard it died (time.time())
        self.deaths: dict[bytes, float] = {}
        self._seen = threading.Condition()

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self) -> None:
        self.node = self._sim_node("watcher", {})
        self.node.server.handlers["worker.node_died"] = self._node_died
        self.run(self.node.start())

    def _sim_node(self, index: Any, resources: dict[str, float]) -> SimNode:
        return SimNode(
            -1,
            self.control,
            self.token,
            "127.0.0.1",
            resources,
            "",
            0.5,
            {PROBE_LABEL: str(index)},
        )

    def _node_died(self, conn: Any, req: NodeDiedMessage, bufs: Any) -> None:
        with self._seen:
            self.deaths[req.node_id] = time.time()
            self._seen.notify_all()

    def wait_death(self, node_id: bytes, timeout_s: float) -> float:
        """When this process heard of ``node_id``'s death (time.time())."""
        deadline = time.monotonic() + timeout_s
        with self._seen:
            while node_id not in self.deaths:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no death notice for {node_id.hex()[:8]}")
                self._seen.wait(left)
            return self.deaths[node_id]

    def join_seen_s(self, timeout_s: float = 60.0) -> float:
        """Register one more node; seconds until the watcher's view holds it."""
        joiner = self._sim_node("joiner", {"probe": 1.0})
        assert self.node is not None
        view = self.node.cluster

        async def go() -> float:
            t0 = time.perf_counter()
            await joiner.start()
            deadline = t0 + timeout_s
            while joiner.node_id not in view.nodes:
                if time.perf_counter() > deadline:
                    raise TimeoutError("the watcher never saw the new node")
                await asyncio.sleep(0.001)  # polling a view the loop itself updates
            return time.perf_counter() - t0

        try:
            return float(self.run(go(), timeout_s + 5))
        finally:
            self.loop.call_soon_threadsafe(joiner.kill)

    def close(self) -> None:
        if self.node is not None:
            self.loop.call_soon_threadsafe(self.node.kill)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
