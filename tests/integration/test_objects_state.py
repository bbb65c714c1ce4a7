"""list_objects / get_objects / summarize_objects and ``ember memory`` on a real two-node cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.util.state import get_objects, list_objects, summarize_objects
from ember.util.state.exception import RayStateApiException
from ember.util.state.objects import collect

pytestmark = pytest.mark.multiprocess

CLI = [sys.executable, "-m", "ember.cli.main"]


def _cluster(monkeypatch, store_bytes: int = 150 * 2**20, **env: str) -> Cluster:
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": store_bytes},
        shutdown_at_exit=False,
    )
    c.add_node(num_cpus=1, resources={"second": 1})
    c.wait_for_nodes()
    c.connect()
    return c


@pytest.fixture
def cluster(monkeypatch):
    c = _cluster(monkeypatch)
    yield c
    ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children())


@ember.remote(num_cpus=0)
class Gate:
    """Async, so that ``open`` runs while a ``wait`` is blocked."""

    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def open(self):
        self.event.set()

    async def wait(self):
        await self.event.wait()
        return True


@ember.remote(resources={"second": 1}, num_cpus=0)
class Holder:
    def keep(self, refs):
        self.refs = refs
        return os.getpid()


@ember.remote(num_cpus=1)
def blocked(x, gate):
    ember.get(gate.wait.remote())
    return x


def _rows(object_hex: str) -> list:
    return list_objects(filters=[("object_id", "=", object_hex)], limit=10_000)


def test_each_kind_of_reference_is_listed_with_rays_fields(cluster):
    small = ember.put(1)
    big = ember.put(np.zeros(400_000))  # 3.2 MB: in the shared-memory store
    inner = ember.put("inner")
    outer = ember.put([inner])
    inner_hex = inner.hex()
    del inner
    arg = ember.put(5)
    gate = Gate.remote()
    pending = blocked.remote(arg, gate)
    holder = Holder.remote()
    holder_pid = ember.get(holder.keep.remote([small]), timeout=60)

    (row,) = _rows(big.hex())
    assert row.reference_type == "LOCAL_REFERENCE"  # in the store, not read here
    value = ember.get(big)
    (row,) = _rows(big.hex())
    assert row.reference_type == "PINNED_IN_MEMORY"  # a value read from it lives
    assert row.type == "DRIVER"
    assert row.pid == os.getpid()
    assert row.object_size >= 3_200_000
    assert row.task_status == "FINISHED"
    assert row.attempt_number == 1
    assert row.call_site == "disabled"
    assert row["ip"] == row.ip  # dict-style access, as Ray's state objects allow
    assert set(row.asdict()) == {
        "object_id",
        "object_size",
        "task_status",
        "attempt_number",
        "reference_type",
        "call_site",
        "type",
        "pid",
        "ip",
    }
    assert _rows(inner_hex)[0].reference_type == "CAPTURED_IN_OBJECT"
    assert _rows(outer.hex())[0].reference_type == "LOCAL_REFERENCE"
    assert _rows(arg.hex())[0].reference_type == "USED_BY_PENDING_TASK"
    mine = _rows(pending.hex())[0]
    assert mine.reference_type == "LOCAL_REFERENCE"
    assert mine.task_status in ("PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER")
    handles = list_objects(filters=[("reference_type", "=", "ACTOR_HANDLE")])
    assert len(handles) >= 2  # gate and holder, held by this driver

    # the small value is held here and, borrowed, by the actor on the other node
    holders = {(e.type, e.pid) for e in get_objects(small.hex())}
    assert ("DRIVER", os.getpid()) in holders
    assert ("WORKER", holder_pid) in holders
    assert get_objects("00" * 20) is None

    assert value.shape == (400_000,)
    gate.open.remote()
    assert ember.get(pending, timeout=60) == 5
    assert wait_until(lambda: _rows(pending.hex())[0].task_status == "FINISHED", 30)
    assert wait_until(
        lambda: (
            not _rows(arg.hex())
            or _rows(arg.hex())[0].reference_type == "LOCAL_REFERENCE"
        ),
        30,
    )


def test_filters_limit_and_the_truncation_warning(cluster):
    refs = [ember.put(i) for i in range(5)]
    assert len(list_objects(filters=[("type", "=", "driver")], limit=1000)) >= 5
    with pytest.warns(UserWarning, match="Showing 2 of the"):
        got = list_objects(limit=2, _explain=True)
    assert len(got) == 2
    assert [o.object_id for o in got] == sorted(o.object_id for o in got)
    with pytest.raises(RayStateApiException, match="colour"):
        list_objects(filters=[("colour", "=", "red")])
    del refs


def test_summary_counts_what_list_shows(cluster):
    refs = [ember.put(i) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        listed = list_objects(limit=10_000)
    summary = summarize_objects()["cluster"]
    assert summary["total_objects"] == len(listed)
    assert summary["callsite_enabled"] is False
    assert summary["summary"]["disabled"]["ref_type_counts"]["LOCAL_REFERENCE"] >= 3
    del refs


def test_ember_memory_prints_refs_and_store_stats(cluster):
    big = ember.put(np.zeros(400_000))
    value = ember.get(big)
    env = dict(os.environ, EMBER_AUTH_TOKEN=cluster.token)
    out = subprocess.run(
        [*CLI, "memory", "--address", cluster.address, "--units", "KB"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "======== Object references status:" in out.stdout
    assert "--- Summary for node address: 127.0.0.1 ---" in out.stdout
    assert big.hex() in out.stdout
    assert "PINNED_IN_MEMORY" in out.stdout
    assert "--- Aggregate object store stats across all nodes ---" in out.stdout
    assert "(2 nodes," in out.stdout
    stats = subprocess.run(
        [*CLI, "memory", "--address", cluster.address, "--stats-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stats.returncode == 0, stats.stderr
    assert big.hex() not in stats.stdout
    assert "Object store memory usage" in stats.stdout
    assert value.sum() == 0
    # the state CLI's resources include objects
    listed = subprocess.run(
        [
            *CLI,
            "list",
            "objects",
            "--address",
            cluster.address,
            "--format",
            "json",
            "--filter",
            f"object_id={big.hex()}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["reference_type"] == "PINNED_IN_MEMORY"
    summary = subprocess.run(
        [*CLI, "summary", "objects", "--address", cluster.address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert summary.returncode == 0, summary.stderr
    assert "callsite_enabled: false" in summary.stdout
    bad = subprocess.run(
        [*CLI, "memory", "--address", cluster.address, "--sort-by", "COLOUR"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "COLOUR" in bad.stderr


def test_ember_memory_refuses_a_wrong_token(cluster, tmp_path):
    wrong = tmp_path / "token"
    wrong.write_text("not-the-token\n")
    out = subprocess.run(
        [*CLI, "memory", "--address", cluster.address, "--token-file", str(wrong)],
        # the environment's token would come first (cluster_utils sets it here)
        env={k: v for k, v in os.environ.items() if k != session.TOKEN_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "refused this process's cluster token" in out.stderr


def test_spilled_objects_are_marked_and_counted(monkeypatch):
    c = _cluster(monkeypatch, store_bytes=64 * 2**20)
    try:
        refs = [ember.put(np.full(3 * 2**20, i, dtype=np.uint8)) for i in range(40)]

        def spilled() -> list[dict]:
            return [r for r in collect().rows if r["spilled"]]

        assert wait_until(lambda: len(spilled()) > 0, 60)
        assert {r["object_id"] for r in spilled()} <= {r.hex() for r in refs}
        env = dict(os.environ, EMBER_AUTH_TOKEN=c.token)
        out = subprocess.run(
            [*CLI, "memory", "--address", c.address, "--units", "MB"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert "Spilled to disk:" in out.stdout
        assert "\nSpilled " in out.stdout  # the store lines
        del refs
    finally:
        ember.shutdown()
        c.shutdown()
    assert wait_until(lambda: not live_children())


def test_call_sites_are_recorded_when_switched_on(monkeypatch):
    c = _cluster(monkeypatch, EMBER_RECORD_REF_CREATION_SITES="1")
    try:

        @ember.remote
        def one():
            return 1

        put_ref = ember.put("x")
        task_ref = one.remote()
        ember.get(task_ref, timeout=60)
        (row,) = _rows(put_ref.hex())
        assert row.call_site.startswith("(put object) ")
        assert (
            f"{__file__}:test_call_sites_are_recorded_when_switched_on:"
            in row.call_site
        )
        (row,) = _rows(task_ref.hex())
        assert row.call_site.startswith("(task call) ")
        assert summarize_objects()["cluster"]["callsite_enabled"] is True
    finally:
        ember.shutdown()
        c.shutdown()
    assert wait_until(lambda: not live_children())
