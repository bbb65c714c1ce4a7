"""ember.data on a real local cluster: streaming past the store's size, errors, retries, actors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ember
from ember.api import runtime_access
from ember.protocol.messages import Empty

pytestmark = pytest.mark.multiprocess

MB = 1024 * 1024
STORE = 64 * MB


def node_stats():
    cw = runtime_access.runtime().cw  # type: ignore[attr-defined]
    reply, _ = cw.run(cw.node_conn.call("node.get_stats", Empty()))
    return reply


@pytest.fixture
def small_store(tmp_path):
    ember.init(
        num_cpus=2,
        object_store_memory=STORE,
        _system_config={"object_spilling_directory": str(tmp_path / "spill")},
    )
    yield
    ember.shutdown()


@pytest.fixture
def cluster2():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def _grow(batch):
    # each input row becomes 1 MB of uint8
    n = len(batch["id"])
    return {"id": batch["id"], "payload": np.full((n, MB), 1, dtype=np.uint8)}


def test_a_dataset_five_times_the_store_streams_through(small_store):
    total_rows = 5 * STORE // MB  # 320 MB of payload against a 64 MB store
    ds = ember.data.range(total_rows, override_num_blocks=80).map_batches(_grow)
    seen = 0
    payload = 0
    for batch in ds.iter_batches(batch_size=8, prefetch_batches=1):
        seen += len(batch["id"])
        payload += int(batch["payload"].sum())
    assert seen == total_rows
    assert payload == total_rows * MB
    stats = node_stats()
    # the pipeline kept to its budget: most of the 320 MB never went to disk
    assert stats.spilled_bytes < 2 * STORE, stats


def test_a_failing_udf_names_the_operator_and_the_batch(cluster2):
    def bad(batch):
        if batch["id"][0] >= 5:
            raise ValueError("boom at five")
        return batch

    ds = ember.data.range(10, override_num_blocks=2).map_batches(bad)
    with pytest.raises(ember.exceptions.UserCodeException) as info:
        ds.take_all()
    text = str(info.value)
    assert "ReadRange->MapBatches(bad)" in text
    assert "boom at five" in text
    assert "'id': 5" in text
    assert isinstance(info.value, ember.exceptions.RayTaskError)


def test_a_task_whose_worker_dies_is_retried(cluster2, tmp_path):
    marker = str(tmp_path / "died-once")

    def die_once(batch):
        if batch["id"][0] == 0 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return batch

    ds = ember.data.range(8, override_num_blocks=4).map_batches(die_once)
    assert sorted(r["id"] for r in ds.take_all()) == list(range(8))
    assert os.path.exists(marker)


def test_callable_class_runs_on_an_actor_pool_once_per_actor(cluster2):
    class Tag:
        def __init__(self, prefix):
            self.prefix = prefix
            self.pid = os.getpid()

        def __call__(self, batch):
            batch["who"] = np.array([f"{self.prefix}{self.pid}"] * len(batch["id"]))
            return batch

    ds = ember.data.range(40, override_num_blocks=8).map_batches(
        Tag, fn_constructor_args=("w",), concurrency=(1, 2), batch_size=5
    )
    rows = ds.take_all()
    assert sorted(r["id"] for r in rows) == list(range(40))
    pids = {r["who"] for r in rows}
    assert 1 <= len(pids) <= 2
    assert all(p.startswith("w") for p in pids)
    assert os.getpid() not in {int(p[1:]) for p in pids}


def test_limit_stops_reading_early_and_stats_name_the_operators(cluster2, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()

    def record(batch):
        (calls / str(int(batch["id"][0]))).touch()
        return batch

    ember.data.DataContext.get_current().execution_options.resource_limits.cpu = 1
    try:
        ds = ember.data.range(100, override_num_blocks=50).map_batches(record).limit(3)
        assert [r["id"] for r in ds.take_all()] == [0, 1, 2]
        assert len(os.listdir(calls)) < 50
        assert "Operator 1 ReadRange->MapBatches(record)" in ds.stats()
    finally:
        ember.data.DataContext.get_current().execution_options.resource_limits.cpu = (
            None
        )


def test_streaming_split_feeds_consumers_in_other_processes(cluster2):
    its = ember.data.range(30, override_num_blocks=6).streaming_split(2)

    @ember.remote(num_cpus=0)
    def consume(it):
        return [r["id"] for r in it.iter_rows()]

    a, b = ember.get([consume.remote(its[0]), consume.remote(its[1])])
    assert sorted(a + b) == list(range(30))
    assert a
    assert b


def test_stopping_iteration_early_releases_the_actor_pool(cluster2):
    class Ident:
        def __call__(self, batch):
            return batch

    ds = ember.data.range(100, override_num_blocks=20).map_batches(Ident, concurrency=1)
    for _ in ds.iter_batches(batch_size=5):
        break

    def pool_gone():
        from ember.util.state import list_actors

        actors = list_actors(filters=[("state", "=", "ALIVE")])
        return not [a for a in actors if "MapWorker" in a["class_name"]]

    from tests.conftest import wait_until

    assert wait_until(pool_gone, timeout_s=30)


def test_max_errored_blocks_skips_that_many_failed_blocks(cluster2):
    def fail_one(batch):
        if batch["id"][0] == 4:
            raise ValueError("bad block")
        return batch

    ctx = ember.data.DataContext.get_current()
    ctx.max_errored_blocks = 1
    try:
        ds = ember.data.range(10, override_num_blocks=5).map_batches(fail_one)
        ds = ds.map_batches(lambda b: {"id": b["id"] * 10})
        assert sorted(r["id"] for r in ds.take_all()) == [0, 10, 20, 30, 60, 70, 80, 90]
    finally:
        ctx.max_errored_blocks = 0
