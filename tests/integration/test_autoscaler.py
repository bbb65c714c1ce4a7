"""The autoscaler with the local provider, for real: nodes come with demand and go idle.

One AutoscalingCluster (a head with 1 CPU, worker nodes with a ``custom``
resource, at most two) under a private HOME, so its records and ``ember
stop`` never meet another checkout's. Every wait is a condition with a
deadline; the module checks that nothing is left running.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import numpy as np
import pytest
from tests.integration.cli_cluster import clean_up, make_root

import ember
from ember.autoscaler.config import KV_NAMESPACE, NODE_TYPE_LABEL, STATUS_KEY
from ember.autoscaler.sdk import request_resources
from ember.cluster_utils import AutoscalingCluster
from ember.common import session
from ember.protocol.messages import SCHEMA, KvGetRequest
from ember.rpc.connection import connect

# slow: the default run stays under 15 minutes on 2 cores (.ci/run runs -m slow)
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

MAX_WORKERS = 2
#: generous: node daemons start slowly on a loaded 2-core machine
DEADLINE_S = 240.0


@pytest.fixture(scope="module")
def cluster():
    root = make_root("emas")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", os.path.join(root, "home"))
        for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
            mp.delenv(var, raising=False)
        c = AutoscalingCluster(
            head_resources={"CPU": 1},
            worker_node_types={
                "custom-node": {
                    "resources": {
                        "CPU": 1,
                        "custom": 1,
                        "object_store_memory": 64 * 2**20,
                    },
                    "min_workers": 0,
                    "max_workers": MAX_WORKERS,
                    "idle_timeout_s": 3,
                    "node_config": {},
                }
            },
            max_workers=MAX_WORKERS,
        )
        try:
            c.start()
            ember.init(address="auto")
            yield c
        finally:
            ember.shutdown()
            c.shutdown()
            problems = clean_up(root)
    assert problems == []


def workers(alive_only: bool = True) -> list[dict]:
    return [
        n
        for n in ember.nodes()
        if n["Labels"].get(NODE_TYPE_LABEL) == "custom-node"
        and (n["Alive"] or not alive_only)
    ]


def wait_for(predicate, what: str, *, watch=None) -> None:
    """Poll ``predicate`` until true (deadline DEADLINE_S); ``watch`` runs each round."""
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if watch is not None:
            watch()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {DEADLINE_S}s: {what}; nodes: {ember.nodes()}"
            )
        time.sleep(0.2)  # polling the cluster's state, with a deadline


def status(c: AutoscalingCluster) -> dict:
    token = session.read_token(f"tcp:{c.address}").encode()

    async def read() -> bytes:
        conn = await connect(f"tcp:{c.address}", token=token, schema=SCHEMA)
        try:
            reply, _ = await conn.call(
                "control.kv_get", KvGetRequest(namespace=KV_NAMESPACE, key=STATUS_KEY)
            )
        finally:
            conn.close()
        return reply.value or b"{}"

    return json.loads(asyncio.run(read()))


@ember.remote(resources={"custom": 1})
def where(i):
    time.sleep(0.3)  # the work itself: long enough that a burst queues up
    return i, ember.get_runtime_context().get_node_id()


def test_a_burst_of_custom_tasks_grows_the_cluster_and_idle_nodes_go(cluster):
    head = next(n["NodeID"] for n in ember.nodes() if n["IsHeadNode"])
    refs = [where.remote(i) for i in range(8)]
    most = [0]

    def watch():
        most[0] = max(most[0], len(workers()))

    def done():
        watch()
        ready, _ = ember.wait(refs, num_returns=len(refs), timeout=0)
        return len(ready) == len(refs)

    wait_for(done, "the burst of tasks finished", watch=watch)
    results = ember.get(refs)
    assert sorted(i for i, _ in results) == list(range(8))
    assert head not in {node for _, node in results}  # the head has no "custom"
    assert 1 <= most[0] <= MAX_WORKERS
    wait_for(lambda: not workers(), "the idle nodes were removed", watch=watch)
    assert most[0] <= MAX_WORKERS
    gone = workers(alive_only=False)
    assert gone
    assert all("drained by the autoscaler" in n["DeathReasonMessage"] for n in gone), (
        gone
    )


@ember.remote(resources={"custom": 1})
def big():
    # 8 MiB: stored in its node's object store
    return ember.get_runtime_context().get_node_id(), np.arange(2**20, dtype=np.int64)


def test_an_idle_node_holding_an_object_stays_until_the_object_is_gone(cluster):
    ref = big.remote()
    ran_on, value = ember.get(ref, timeout=DEADLINE_S)
    t0 = time.time()
    # The autoscaler's own clock passes the idle timeout (3 s) twice over while
    # the node holds the object (its primary copy): it is not idle, so it stays.
    wait_for(
        lambda: status(cluster).get("updated", 0) > t0 + 2 * 3 + 2,
        "the autoscaler ticked past the idle timeout",
    )
    report = status(cluster)["nodes"]
    assert report[ran_on]["idle_s"] == 0, report
    assert ran_on in {n["NodeID"] for n in workers()}
    again = ember.get(ref, timeout=60)[1]
    assert again[-1] == 2**20 - 1
    assert int(again.sum()) == (2**20 - 1) * 2**19
    del ref, value, again
    wait_for(lambda: not workers(), "the node went once the object was freed")


def test_request_resources_starts_nodes_within_max_workers(cluster, capfd):
    request_resources(bundles=[{"custom": 1}] * (MAX_WORKERS + 1))
    most = [0]

    def count() -> int:
        n = len(workers())
        most[0] = max(most[0], n)
        return n

    wait_for(lambda: count() == MAX_WORKERS, "nodes for the request")
    wait_for(
        lambda: status(cluster).get("unplaced") == [{"custom": 1.0}],
        "the bundle over max_workers reported as unplaced",
        watch=count,
    )
    assert count() == MAX_WORKERS
    request_resources(bundles=[])
    wait_for(lambda: count() == 0, "the nodes went after the request was withdrawn")
    assert most[0] == MAX_WORKERS
    # an idle node removed on purpose is no news to the driver
    assert "A node died" not in capfd.readouterr().err
