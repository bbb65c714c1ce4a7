"""One simulator process: K simulated nodes and their shared no-op worker.

Usage (the token comes from ``EMBER_AUTH_TOKEN``, as for a real node daemon)::

    PYTHONPATH=src:bench python -m sim --control tcp:127.0.0.1:PORT --nodes 300 \
        --resources '{"CPU": 4, "sim": 4}' [--task-delay-s 0] [--heartbeat-interval-s 0.5]

It prints one line ``READY {json}`` on stdout once every node registered
(``{"worker": address, "nodes": [node id hex, ...]}``), then answers one
command per stdin line with one JSON line:

* ``stats``: running/completed tasks, created actors, leases held;
* ``kill I``: node ``I`` dies as a crashed daemon does (its connections drop);
* ``hold`` / ``release``: pushed tasks wait (stay running) until released;
* ``quit`` (or stdin's end): everything stops, the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from ember.common.fdlimit import raise_nofile_limit
from ember.common.process import token_from_env
from sim.node import SimNode
from sim.worker import SimWorker

#: nodes registering at once (a real cluster's nodes do not all start in one ms)
START_CONCURRENCY = 16


class Simulator:
    """K simulated nodes in one event loop."""

    def __init__(self, args: argparse.Namespace, token: bytes) -> None:
        self.args = args
        self.token = token
        self.worker = SimWorker(token, args.task_delay_s)
        self.nodes: list[SimNode] = []

    async def start(self) -> None:
        a = self.args
        # each node serves its leases' workers on its own server, as every real
        # worker has its own (one shared server would cap concurrent handshakes)
        address = ""
        resources = {k: float(v) for k, v in json.loads(a.resources).items()}
        labels = json.loads(a.labels)
        self.nodes = [
            SimNode(
                a.index_base + i,
                a.control,
                self.token,
                a.host,
                resources,
                address,
                a.heartbeat_interval_s,
                labels,
                self.worker.handlers,
            )
            for i in range(a.nodes)
        ]
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def one(n: SimNode) -> None:
            async with gate:
                await n.start()

        await asyncio.gather(*(one(n) for n in self.nodes))

    def command(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words:
            return {}
        if words[0] == "stats":
            return {
                "running": self.worker.running,
                "peak_running": self.worker.peak_running,
                "completed": self.worker.completed,
                "actors": self.worker.actors_created,
                "leases": sum(len(n.granted) for n in self.nodes),
                "pending": sum(len(n.pending) for n in self.nodes),
                "alive": sum(n.alive for n in self.nodes),
            }
        if words[0] == "kill":
            node = self.nodes[int(words[1])]
            node.kill()
            return {"killed": node.node_id.hex(), "at": time.time()}
        if words[0] == "hold":
            self.worker.gate.clear()
            return {"held": True}
        if words[0] == "release":
            self.worker.gate.set()
            return {"held": False}
        if words[0] == "reset_peak":
            self.worker.peak_running = self.worker.running
            return {"peak_running": self.worker.peak_running}
        return {"error": f"unknown command {words[0]!r}"}

    def close(self) -> None:
        for n in self.nodes:
            n.kill()
        self.worker.close()


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(args, token_from_env())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", 0)
    )
    try:
        await sim.start()
        ready = {
            "worker": "each node's own address",
            "nodes": [n.node_id.hex() for n in sim.nodes],
        }
        print("READY " + json.dumps(ready), flush=True)
        while True:
            raw = await reader.readline()
            line = raw.decode().strip()
            if not raw or line == "quit":
                return
            print(json.dumps(sim.command(line)), flush=True)
    finally:
        sim.close()
        await asyncio.sleep(0)  # let the cancelled heartbeat tasks finish


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim")
    p.add_argument(
        "--control", required=True, help="tcp:HOST:PORT of the control service"
    )
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--resources", default='{"CPU": 4, "sim": 4}')
    p.add_argument("--labels", default="{}")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--index-base", type=int, default=0)
    p.add_argument("--task-delay-s", type=float, default=0.0)
    p.add_argument("--heartbeat-interval-s", type=float, default=0.5)
    args = p.parse_args(argv)
    if args.nodes < 1:
        p.error("--nodes must be at least 1")
    raise_nofile_limit()
    try:
        from ember.common.aio import new_event_loop

        loop = new_event_loop()
        loop.run_until_complete(_serve(args))
        loop.close()
    except KeyboardInterrupt:
        sys.exit(130)
