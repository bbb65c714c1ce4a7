"""The driver test_netns.py runs inside the head's network namespace.

Usage: ``python netns_driver.py HOST:PORT`` with ``EMBER_AUTH_TOKEN`` set.
Every finding is printed as one line ``NETNS <json>`` so that the test can
tell them from the workers' streamed output.  Between the placement checks
and the failure check it prints ``NETNS {"step": "cut-link"}`` and waits
for a line on stdin: the test takes n2's link down, then writes that line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import numpy as np

import ember
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy

TIMEOUT_S = 120.0
ARRAY_BYTES = 100 * 1024 * 1024


def report(**fields: object) -> None:
    print("NETNS " + json.dumps(fields), flush=True)


def wait_for(predicate, what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


@ember.remote(num_cpus=1)
def where() -> tuple[str, str]:
    from ember.util import get_node_ip_address

    return ember.get_runtime_context().get_node_id(), get_node_ip_address()


@ember.remote
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def inc(self) -> tuple[int, str]:
        self.n += 1
        return self.n, ember.get_runtime_context().get_node_id()


@ember.remote(num_cpus=1)
def produce() -> np.ndarray:
    return np.arange(ARRAY_BYTES // 8, dtype=np.int64)


@ember.remote(num_cpus=1)
def consume(arr: np.ndarray) -> tuple[int, int, str]:
    return int(arr.sum()), int(arr.nbytes), ember.get_runtime_context().get_node_id()


@ember.remote(num_cpus=0)
class Signal:
    """Holds the go signal; remembers which node each attempt of ``blocker`` ran on."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.arrivals: list[str] = []

    async def arrive(self, node_id: str) -> None:
        self.arrivals.append(node_id)

    async def get_arrivals(self) -> list[str]:
        return list(self.arrivals)

    async def wait(self) -> None:
        await self.event.wait()

    async def send(self) -> None:
        self.event.set()


@ember.remote(num_cpus=1, max_retries=2)
def blocker(signal) -> str:
    me = ember.get_runtime_context().get_node_id()
    ember.get(signal.arrive.remote(me))
    ember.get(signal.wait.remote())
    return me


def main() -> None:
    address = sys.argv[1]
    ember.init(address=address, configure_logging=False)
    nodes = {n["NodeID"]: n for n in ember.nodes()}
    report(step="nodes", nodes=[
        {"id": k, "ip": n["NodeManagerAddress"], "alive": n["Alive"],
         "head": n["IsHeadNode"], "resources": sorted(n["Resources"])}
        for k, n in nodes.items()
    ])  # fmt: skip
    by_name = {}
    for name in ("head", "n1", "n2"):
        [node_id] = [k for k, n in nodes.items() if name in n["Resources"]]
        by_name[name] = node_id

    # 1. A task pinned (by custom resource) to each node.
    placed = ember.get(
        [where.options(resources={name: 1}).remote() for name in by_name],
        timeout=TIMEOUT_S,
    )
    for name, (node_id, ip) in zip(by_name, placed, strict=True):
        report(step="task", want=name, node_id=node_id, ip=ip)

    # 2. An actor on n1, called from the head's namespace.
    counter = Counter.options(resources={"n1": 0.5}).remote()
    calls = ember.get([counter.inc.remote() for _ in range(3)], timeout=TIMEOUT_S)
    report(step="actor", counts=[c for c, _ in calls], nodes=[n for _, n in calls])
    ember.kill(counter)

    # 3. 100 MB produced on n2, summed by a task on n1 (moved over the bridge).
    on = {
        name: NodeAffinitySchedulingStrategy(node_id, soft=False)
        for name, node_id in by_name.items()
    }
    ref = produce.options(scheduling_strategy=on["n2"]).remote()
    total, nbytes, node_id = ember.get(
        consume.options(scheduling_strategy=on["n1"]).remote(ref), timeout=TIMEOUT_S
    )
    n = ARRAY_BYTES // 8
    report(
        step="transfer", sum=total, expected=n * (n - 1) // 2, nbytes=nbytes,
        node_id=node_id,
    )  # fmt: skip
    del ref

    # 4. A retriable task running on n2 when n2's link goes down.
    signal = Signal.options(scheduling_strategy=on["head"]).remote()
    prefer_n2 = NodeAffinitySchedulingStrategy(by_name["n2"], soft=True)
    task = blocker.options(scheduling_strategy=prefer_n2).remote(signal)
    wait_for(
        lambda: by_name["n2"] in ember.get(signal.get_arrivals.remote()),
        "the blocker task to start on n2",
    )
    report(step="cut-link")
    if sys.stdin.readline().strip() != "link-down":
        raise SystemExit("the test did not confirm that n2's link is down")
    cut = time.monotonic()

    def n2_dead() -> bool:
        return not any(
            n["Alive"] for n in ember.nodes() if n["NodeID"] == by_name["n2"]
        )

    wait_for(n2_dead, "n2 to be declared dead")
    [death] = [n for n in ember.nodes() if n["NodeID"] == by_name["n2"]]
    report(
        step="n2-dead", reason=death["DeathReasonMessage"],
        seconds_after_cut=round(time.monotonic() - cut, 1),
    )  # fmt: skip
    wait_for(
        lambda: any(
            a != by_name["n2"] for a in ember.get(signal.get_arrivals.remote())
        ),
        "the blocker task to be retried on another node",
    )
    ember.get(signal.send.remote(), timeout=TIMEOUT_S)
    finished_on = ember.get(task, timeout=TIMEOUT_S)
    report(
        step="retried", node_id=finished_on,
        arrivals=ember.get(signal.get_arrivals.remote(), timeout=TIMEOUT_S),
    )  # fmt: skip
    alive = sorted(n["NodeID"] for n in ember.nodes() if n["Alive"])
    report(step="done", alive=alive, by_name=by_name)
    ember.shutdown()


if __name__ == "__main__":
    main()
