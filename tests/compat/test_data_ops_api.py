"""ray.data's all-to-all operations and aggregations as Ray 2.60 documents them.

The aggregation objects need no cluster. The Dataset tests need ember.data's
Dataset (built beside these operations); they skip until it is there.
Group order is not part of Ray's contract (2.60 hash-partitions), so results
are compared sorted.
"""

from __future__ import annotations

import math
import statistics

import pytest

import ember as ray
from ember.data.aggregate import (
    AbsMax,
    AggregateFn,
    Count,
    Max,
    Mean,
    Min,
    Quantile,
    Std,
    Sum,
    Unique,
)


def test_aggregation_names():
    assert Count().name == "count()"
    assert Count("x").name == "count(x)"
    names = [
        Sum("x"),
        Min("x"),
        Max("x"),
        Mean("x"),
        Std("x"),
        AbsMax("x"),
        Quantile("x"),
        Unique("x"),
    ]
    assert [a.name for a in names] == [
        "sum(x)",
        "min(x)",
        "max(x)",
        "mean(x)",
        "std(x)",
        "abs_max(x)",
        "quantile(x)",
        "unique(x)",
    ]
    assert Sum("x", alias_name="total").name == "total"


def test_aggregate_fn_validation():
    with pytest.raises(ValueError):
        AggregateFn(init=lambda k: 0, merge=lambda a, b: a + b, name="n")
    with pytest.raises(ValueError):
        AggregateFn(
            init=lambda k: 0,
            merge=lambda a, b: a + b,
            name="n",
            accumulate_row=lambda a, r: a,
            accumulate_block=lambda a, b: a,
        )
    with pytest.raises(ValueError):
        AbsMax()


def _data():
    return pytest.importorskip(ray.__name__ + ".data")


ITEMS = [
    {"k": "b", "x": 1, "y": 1.5},
    {"k": "a", "x": None, "y": 2.5},
    {"k": "b", "x": 4, "y": None},
    {"k": "a", "x": 5, "y": 5.5},
    {"k": "c", "x": 6, "y": 6.5},
]


def _sorted(rows):
    return sorted(rows, key=lambda r: str(r["k"]))


def test_groupby_aggregations(ray_module):
    data = _data()
    ds = data.from_items(ITEMS)
    assert _sorted(ds.groupby("k").count().take_all()) == [
        {"k": "a", "count()": 2},
        {"k": "b", "count()": 2},
        {"k": "c", "count()": 1},
    ]
    assert _sorted(ds.groupby("k").sum("x").take_all()) == [
        {"k": "a", "sum(x)": 5},
        {"k": "b", "sum(x)": 5},
        {"k": "c", "sum(x)": 6},
    ]
    means = _sorted(ds.groupby("k").mean("x", ignore_nulls=False).take_all())
    assert [r["mean(x)"] for r in means] == [None, 2.5, 6.0]
    stds = _sorted(ds.groupby("k").std("y", ddof=0).take_all())
    assert [r["std(y)"] for r in stds] == [1.5, 0.0, 0.0]
    rows = _sorted(ds.groupby("k").aggregate(Count(), Sum("x"), Sum("x")).take_all())
    assert rows[0] == {"k": "a", "count()": 2, "sum(x)": 5, "sum(x)_2": 5}
    assert ds.groupby(None).count().take_all() == [{"count()": 5}]


def test_dataset_aggregates(ray_module):
    data = _data()
    ds = data.from_items(ITEMS)
    assert ds.aggregate(Count(), Sum("x"), Mean("y")) == {
        "count()": 5,
        "sum(x)": 16,
        "mean(y)": 4.0,
    }
    assert ds.sum("x") == 16
    assert ds.max(["x", "y"]) == {"max(x)": 6, "max(y)": 6.5}
    assert math.isclose(ds.std("x"), statistics.stdev([1, 4, 5, 6]))


def test_sort_puts_nulls_last(ray_module):
    data = _data()
    ds = data.from_items(ITEMS)
    assert [r["x"] for r in ds.sort("x").take_all()] == [1, 4, 5, 6, None]
    assert [r["x"] for r in ds.sort("x", descending=True).take_all()] == [
        6,
        5,
        4,
        1,
        None,
    ]
    pairs = [
        (r["k"], r["x"])
        for r in ds.sort(["k", "x"], descending=[True, False]).take_all()
    ]
    assert pairs == [("c", 6), ("b", 1), ("b", 4), ("a", 5), ("a", None)]
    with pytest.raises(ValueError, match="no such column"):
        ds.sort("zz").take_all()


def test_shuffle_repartition_union_zip_unique(ray_module):
    data = _data()
    ds = data.range(20)
    assert sorted(r["id"] for r in ds.random_shuffle(seed=3).take_all()) == list(
        range(20)
    )
    assert sorted(r["id"] for r in ds.repartition(3).take_all()) == list(range(20))
    assert sorted(r["id"] for r in ds.randomize_block_order(seed=1).take_all()) == list(
        range(20)
    )
    assert ds.union(data.range(5)).count() == 25
    assert data.range(3).zip(data.range(3)).take_all() == [
        {"id": 0, "id_1": 0},
        {"id": 1, "id_1": 1},
        {"id": 2, "id_1": 2},
    ]
    with pytest.raises(ValueError, match="different number of rows"):
        data.range(3).zip(data.range(4)).take_all()
    assert sorted(data.from_items(ITEMS).unique("k")) == ["a", "b", "c"]


def test_map_groups(ray_module):
    data = _data()
    import numpy as np

    ds = data.from_items(ITEMS)
    rows = ds.groupby("k").map_groups(
        lambda g: {"k": g["k"][:1], "n": np.array([len(g["k"])])}
    )
    assert _sorted(rows.take_all()) == [
        {"k": "a", "n": 2},
        {"k": "b", "n": 2},
        {"k": "c", "n": 1},
    ]
