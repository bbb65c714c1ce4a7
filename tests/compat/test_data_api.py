"""ember.data against Ray Data's API: each test passes unchanged on Ray 2.60.

Ray Data does not promise row order between blocks unless asked, so results that
cross blocks are compared sorted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import ember as ray


def _ids(ds, col="id"):
    return sorted(r[col] for r in ds.take_all())


def test_range_take_count_schema(ray_module):
    ds = ray.data.range(10)
    assert ds.count() == 10
    assert ds.columns() == ["id"]
    assert ds.schema().names == ["id"]
    assert _ids(ds) == list(range(10))
    assert len(ds.take(3)) == 3
    assert isinstance(ds.take(1)[0]["id"], int)


def test_creation_functions(ray_module):
    assert ray.data.from_items([1, 2]).take_all() == [{"item": 1}, {"item": 2}]
    assert ray.data.from_items([{"a": 1, "b": "x"}]).take_all() == [{"a": 1, "b": "x"}]
    assert ray.data.from_numpy(np.arange(3)).take_all() == [
        {"data": 0},
        {"data": 1},
        {"data": 2},
    ]
    row = ray.data.from_numpy(np.ones((2, 3))).take(1)[0]
    assert row["data"].shape == (3,)
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert ray.data.from_pandas(df).to_pandas().equals(df)
    assert ray.data.from_arrow(pa.table({"a": [3, 4]})).take_all() == [
        {"a": 3},
        {"a": 4},
    ]
    t = ray.data.range_tensor(4, shape=(2, 2)).take(2)[1]["data"]
    assert t.shape == (2, 2)
    assert t.tolist() == [[1, 1], [1, 1]]


def test_map_filter_flat_map(ray_module):
    ds = ray.data.range(10)
    assert _ids(ds.map(lambda r: {"id": r["id"] * 2})) == [i * 2 for i in range(10)]
    assert _ids(ds.filter(lambda r: r["id"] % 3 == 0)) == [0, 3, 6, 9]
    assert _ids(ds.flat_map(lambda r: [r, r])) == sorted(list(range(10)) * 2)


def test_map_batches_formats_and_batch_size(ray_module):
    ds = ray.data.range(12, override_num_blocks=2)

    def numpy_fn(batch):
        assert isinstance(batch, dict)
        assert isinstance(batch["id"], np.ndarray)
        assert len(batch["id"]) <= 4
        return {"y": batch["id"] + 1}

    assert _ids(ds.map_batches(numpy_fn, batch_size=4), "y") == list(range(1, 13))

    def pandas_fn(df):
        assert isinstance(df, pd.DataFrame)
        return df.assign(z=df["id"] * 10)

    assert _ids(ds.map_batches(pandas_fn, batch_format="pandas"), "z") == [
        i * 10 for i in range(12)
    ]

    def arrow_fn(t):
        assert isinstance(t, pa.Table)
        return t

    assert ds.map_batches(arrow_fn, batch_format="pyarrow").count() == 12

    def with_args(batch, k, *, m):
        return {"id": batch["id"] * k + m}

    out = ds.map_batches(with_args, fn_args=(2,), fn_kwargs={"m": 1})
    assert _ids(out) == [i * 2 + 1 for i in range(12)]


def test_callable_class_with_concurrency(ray_module):
    class AddK:
        def __init__(self, k):
            self.k = k

        def __call__(self, batch):
            return {"id": batch["id"] + self.k}

    ds = ray.data.range(8).map_batches(AddK, fn_constructor_args=(100,), concurrency=2)
    assert _ids(ds) == [100 + i for i in range(8)]
    ds = ray.data.range(8).map_batches(
        AddK, fn_constructor_args=(1,), concurrency=(1, 2)
    )
    assert _ids(ds) == [1 + i for i in range(8)]
    with pytest.raises(ValueError):
        ray.data.range(8).map_batches(lambda b: b, concurrency=(1, 2))


def test_column_operations(ray_module):
    ds = ray.data.from_items([{"a": i, "b": i * 2, "c": "x"} for i in range(4)])
    assert ds.add_column("d", lambda df: df["a"] + df["b"]).take(1) == [
        {"a": 0, "b": 0, "c": "x", "d": 0}
    ]
    assert ds.drop_columns(["b", "c"]).columns() == ["a"]
    assert ds.select_columns(["c", "a"]).columns() == ["c", "a"]
    assert ds.rename_columns({"a": "A"}).columns() == ["A", "b", "c"]


def test_limit_and_take_batch(ray_module):
    ds = ray.data.range(100)
    assert ds.limit(5).count() == 5
    batch = ds.take_batch(7)
    assert isinstance(batch, dict)
    assert len(batch["id"]) == 7
    df = ds.take_batch(3, batch_format="pandas")
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 3


def test_iter_batches_and_rows(ray_module):
    ds = ray.data.range(25, override_num_blocks=3)
    sizes = [len(b["id"]) for b in ds.iter_batches(batch_size=10)]
    assert sizes == [10, 10, 5]
    assert [len(b["id"]) for b in ds.iter_batches(batch_size=10, drop_last=True)] == [
        10,
        10,
    ]
    got = np.concatenate(
        [b["id"] for b in ds.iter_batches(batch_size=4, local_shuffle_buffer_size=8)]
    )
    assert sorted(got.tolist()) == list(range(25))
    frames = list(ds.iter_batches(batch_size=None, batch_format="pandas"))
    assert all(isinstance(f, pd.DataFrame) for f in frames)
    assert sorted(r["id"] for r in ds.iter_rows()) == list(range(25))


def test_materialize_blocks_and_sizes(ray_module):
    ds = ray.data.range(10, override_num_blocks=5)
    m = ds.materialize()
    assert isinstance(m, ray.data.dataset.MaterializedDataset)
    assert m.num_blocks() == 5
    assert m.size_bytes() == 80
    assert m.count() == 10
    assert isinstance(ds.stats(), str)


def test_split_and_train_test_split(ray_module):
    ds = ray.data.range(10)
    parts = ds.split(3, equal=True)
    assert [p.count() for p in parts] == [3, 3, 3]
    assert sorted(i for p in ds.split(3) for i in _ids(p)) == list(range(10))
    train, test = ray.data.range(3).train_test_split(0.34)
    assert (train.count(), test.count()) == (1, 2)
    train, test = ray.data.range(10).train_test_split(test_size=2)
    assert (train.count(), test.count()) == (8, 2)


def test_streaming_split_in_the_driver(ray_module):
    a, b = ray.data.range(20, override_num_blocks=4).streaming_split(2, equal=True)
    got = []
    import threading

    def run(it, out):
        out.extend(r["id"] for r in it.iter_rows())

    outs = [[], []]
    threads = [
        threading.Thread(target=run, args=(it, o))
        for it, o in zip((a, b), outs, strict=False)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    got = outs[0] + outs[1]
    assert sorted(got) == list(range(20))
    assert len(outs[0]) == len(outs[1]) == 10


def test_data_context_knobs(ray_module):
    ctx = ray.data.DataContext.get_current()
    assert ctx is ray.data.DataContext.get_current()
    assert ctx.target_max_block_size > 0
    opts = ctx.execution_options
    old = opts.resource_limits
    opts.resource_limits = (
        opts.resource_limits.copy(cpu=1) if hasattr(old, "copy") else old
    )
    try:
        assert ray.data.range(6).map(lambda r: r).count() == 6
    finally:
        opts.resource_limits = old
    ctx.enable_progress_bars = False
    assert ray.data.range(3).count() == 3
    ctx.enable_progress_bars = True


def test_errors_from_user_code(ray_module):
    def bad(row):
        raise KeyError("nope")

    with pytest.raises(ray.exceptions.UserCodeException):
        ray.data.range(3).map(bad).take_all()


def test_from_refs(ray_module):
    t = ray.put(pa.table({"a": [1, 2]}))
    assert ray.data.from_arrow_refs([t]).take_all() == [{"a": 1}, {"a": 2}]
    df = ray.put(pd.DataFrame({"a": [3]}))
    assert ray.data.from_pandas_refs([df]).take_all() == [{"a": 3}]
    arr = ray.put(np.arange(2))
    assert ray.data.from_numpy_refs([arr]).take_all() == [{"data": 0}, {"data": 1}]


@pytest.mark.cluster_only("the consumers wait for each other inside a threaded actor")
def test_streaming_split_epochs_wait_for_every_consumer(ray_module):
    import threading

    its = ray.data.range(40, override_num_blocks=8).streaming_split(2)
    seen = [[], []]

    def run(i):
        for _epoch in range(2):
            seen[i].append(sorted(r["id"] for r in its[i].iter_rows()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for epoch in range(2):
        assert sorted(seen[0][epoch] + seen[1][epoch]) == list(range(40))
