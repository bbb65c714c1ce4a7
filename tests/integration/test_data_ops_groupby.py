"""GroupedData and the hash-partitioned group-by on a real local cluster.

``BlocksDataset`` stands in for ember.data's Dataset through the two methods
of the contract GroupedData uses (``_block_refs``, ``_from_block_refs``).
"""

from __future__ import annotations

import itertools
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import ember
from ember.data import _alltoall
from ember.data.aggregate import Count, Max, Mean, Sum
from ember.data.grouped_data import GroupedData

pytestmark = pytest.mark.multiprocess


class BlocksDataset:
    def __init__(self, refs, op_name="Input"):
        self.refs = list(refs)
        self.op_name = op_name
        self.executions = 0

    def _block_refs(self):
        self.executions += 1
        return self.refs

    @classmethod
    def _from_block_refs(cls, refs, op_name):
        return cls(refs, op_name)

    def rows(self):
        return [r for t in ember.get(self.refs) for r in t.to_pylist()]


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def _dataset(table, blocks):
    n = table.num_rows
    bounds = [(i * n) // blocks for i in range(blocks + 1)]
    return BlocksDataset(
        ember.put(table.slice(a, b - a)) for a, b in itertools.pairwise(bounds)
    )


T = pa.table(
    {
        "k": ["b", "a", None, "b", "a", "c"],
        "x": [1, None, 3, 4, 5, 6],
        "y": [1.5, 2.5, 3.5, None, 5.5, 6.5],
    }
)


def test_count_and_sum_in_key_order_as_ray_computes_them(cluster):
    ds = _dataset(T, 3)
    counted = GroupedData(ds, "k").count()
    assert counted.op_name == "Aggregate"
    assert counted.rows() == [
        {"k": "a", "count()": 2},
        {"k": "b", "count()": 2},
        {"k": "c", "count()": 1},
        {"k": None, "count()": 1},
    ]
    summed = GroupedData(ds, "k").sum(["x", "y"]).rows()
    assert summed[0] == {"k": "a", "sum(x)": 5, "sum(y)": 8.0}
    before = ds.executions
    every = GroupedData(ds, "k").mean().rows()  # on=None: every non-key column
    assert ds.executions == before + 1  # the plan runs once
    assert set(every[0]) == {"k", "mean(x)", "mean(y)"}
    assert GroupedData(ds, None).count().rows() == [{"count()": 6}]


def test_groupby_matches_pandas_on_random_data(cluster):
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame(
        {
            "g": rng.integers(0, 40, n),
            "h": rng.integers(0, 3, n),
            "v": rng.normal(size=n),
        }
    )
    ds = _dataset(pa.Table.from_pandas(frame, preserve_index=False), 6)
    got = GroupedData(ds, ["g", "h"], num_partitions=4).aggregate(
        Count(), Sum("v"), Max("v"), Mean("v")
    )
    assert len(got.refs) == 4
    rows = got.rows()
    ref = (
        frame.groupby(["g", "h"])["v"].agg(["size", "sum", "max", "mean"]).reset_index()
    )
    assert [(r["g"], r["h"]) for r in rows] == list(
        zip(ref["g"], ref["h"], strict=True)
    )
    assert [r["count()"] for r in rows] == list(ref["size"])
    assert [r["sum(v)"] for r in rows] == pytest.approx(list(ref["sum"]))
    assert [r["mean(v)"] for r in rows] == pytest.approx(list(ref["mean"]))
    assert GroupedData(ds, "g").std("v", ddof=0).rows()[0]["std(v)"] == pytest.approx(
        frame[frame.g == 0]["v"].std(ddof=0)
    )


def test_dataset_wide_aggregate_row(cluster):
    ds = _dataset(T, 2)
    assert _alltoall.aggregate_row(ds.refs, [Count(), Sum("x"), Mean("y")]) == {
        "count()": 6,
        "sum(x)": 19,
        "mean(y)": 3.9,
    }


def test_missing_key_is_a_value_error(cluster):
    ds = _dataset(T, 2)
    with pytest.raises(ValueError, match="no such column"):
        GroupedData(ds, "zz").count().rows()
    with pytest.raises(TypeError):
        GroupedData(ds, 3)


def test_map_groups_formats_args_and_classes(cluster):
    ds = _dataset(T, 3)

    def first(batch, offset):
        return {"k": batch["k"][:1], "n": np.array([len(batch["x"]) + offset])}

    rows = GroupedData(ds, "k").map_groups(first, fn_args=(10,)).rows()
    assert sorted(rows, key=lambda r: (r["k"] is None, str(r["k"]))) == [
        {"k": "a", "n": 12},
        {"k": "b", "n": 12},
        {"k": "c", "n": 11},
        {"k": None, "n": 11},
    ]
    heads = (
        GroupedData(ds, "k")
        .map_groups(lambda df: df.head(1), batch_format="pandas")
        .rows()
    )
    assert sorted(r["y"] for r in heads) == [1.5, 2.5, 3.5, 6.5]

    class Scale:
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, table):
            return pa.table(
                {
                    "k": table.column("k").slice(0, 1),
                    "s": [
                        sum(v or 0 for v in table.column("x").to_pylist()) * self.factor
                    ],
                }
            )

    scaled = GroupedData(ds, "k").map_groups(
        Scale,
        batch_format="pyarrow",
        fn_constructor_args=(2,),
        concurrency=1,
        num_cpus=1,
    )
    assert scaled.op_name == "MapGroups"
    assert {r["k"]: r["s"] for r in scaled.rows()} == {
        "a": 10,
        "b": 10,
        "c": 12,
        None: 6,
    }

    class Tag:
        def __init__(self):
            self.tag = uuid.uuid4().hex

        def __call__(self, batch):
            return {"k": batch["k"][:1], "tag": np.array([self.tag])}

    tagged = (
        GroupedData(ds, "k", num_partitions=3).map_groups(Tag, concurrency=1).rows()
    )
    assert len(tagged) == 4
    assert len({r["tag"] for r in tagged}) == 1  # one actor: the class was built once
    whole = (
        GroupedData(ds, None)
        .map_groups(lambda b: {"n": np.array([len(b["k"])])})
        .rows()
    )
    assert whole == [{"n": 6}]
    with pytest.raises(ValueError, match="batch format"):
        GroupedData(ds, "k").map_groups(first, batch_format="rows")
