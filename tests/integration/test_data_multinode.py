"""A Data pipeline across two nodes: read Parquet -> map_batches on an actor pool -> write."""

from __future__ import annotations

import importlib.util
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


@pytest.fixture
def cluster(monkeypatch):
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    monkeypatch.delenv(session.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False
    )
    c.add_node(num_cpus=2, resources={"worker_node": 2})
    c.wait_for_nodes(timeout=60)
    c.connect(namespace="data")
    yield c
    ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children(), timeout_s=30)


def test_parquet_actor_pool_write_across_two_nodes(cluster, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        pq.write_table(
            pa.table({"id": list(range(i * 100, i * 100 + 100))}), src / f"f{i}.parquet"
        )

    class Where:
        def __init__(self):
            self.node = ember.get_runtime_context().get_node_id()

        def __call__(self, batch):
            batch["node"] = [self.node] * len(batch["id"])
            batch["double"] = batch["id"] * 2
            return batch

    ds = ember.data.read_parquet(str(src)).map_batches(
        Where, concurrency=2, num_cpus=1, batch_size=50, resources={"worker_node": 1}
    )
    out = tmp_path / "out"
    ds.write_parquet(str(out))
    back = ember.data.read_parquet(str(out)).take_all()
    assert sorted(r["id"] for r in back) == list(range(600))
    assert all(r["double"] == 2 * r["id"] for r in back)
    worker = next(n["NodeID"] for n in ember.nodes() if not n["IsHeadNode"])
    assert {r["node"] for r in back} == {worker}  # the pool ran where its resources are
    assert len(os.listdir(out)) == 6


@pytest.mark.skipif(
    importlib.util.find_spec("ember.data.grouped_data") is None,
    reason="ember.data's group-by is not in this build yet",
)
def test_parquet_groupby_across_two_nodes(cluster, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        ids = list(range(i * 50, i * 50 + 50))
        pq.write_table(
            pa.table({"id": ids, "k": [x % 5 for x in ids]}), src / f"f{i}.parquet"
        )

    class Double:
        def __call__(self, batch):
            batch["v"] = batch["id"] * 2
            return batch

    ds = ember.data.read_parquet(str(src)).map_batches(Double, concurrency=2)
    sums = sorted((r["k"], r["sum(v)"]) for r in ds.groupby("k").sum("v").take_all())
    expected = sorted(
        (k, sum(2 * x for x in range(200) if x % 5 == k)) for k in range(5)
    )
    assert sums == expected
    ds.groupby("k").count().write_parquet(str(tmp_path / "counts"))
    counts = ember.data.read_parquet(str(tmp_path / "counts")).take_all()
    assert sorted((r["k"], r["count()"]) for r in counts) == [(k, 40) for k in range(5)]
