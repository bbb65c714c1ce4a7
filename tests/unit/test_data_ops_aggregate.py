"""ember.data.aggregate and the per-partition group aggregation, checked against pandas and Ray's outputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from ember.data._alltoall.groupby import aggregate_groups, output_names
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

# the table of the Ray 2.60 session recorded in docs/seams/data_ops.md
T = pa.table(
    {
        "k": ["b", "a", None, "b", "a", "c"],
        "x": [1, None, 3, 4, 5, 6],
        "y": [1.5, 2.5, 3.5, None, 5.5, 6.5],
    }
)


def _by_key(table):
    return {r["k"]: r for r in table.to_pylist()}


def test_grouped_values_and_names_match_ray():
    out = aggregate_groups(
        T, ["k"], [Count(), Sum("x"), AbsMax("x"), Quantile("y"), Unique("x"), Sum("x")]
    )
    assert out.column_names == [
        "k",
        "count()",
        "sum(x)",
        "abs_max(x)",
        "quantile(y)",
        "unique(x)",
        "sum(x)_2",
    ]
    rows = _by_key(out)
    assert rows["a"] == {
        "k": "a",
        "count()": 2,
        "sum(x)": 5,
        "abs_max(x)": 5,
        "quantile(y)": 4.0,
        "unique(x)": [None, 5],
        "sum(x)_2": 5,
    }
    assert rows[None]["count()"] == 1
    assert rows["b"]["quantile(y)"] == 1.5
    assert out.schema.field("sum(x)").type == pa.int64()
    assert out.column("k").to_pylist() == ["a", "b", "c", None]


def test_null_rules_follow_ignore_nulls():
    rows = _by_key(
        aggregate_groups(T, ["k"], [Mean("x", ignore_nulls=False), Min("x")])
    )
    assert rows["a"]["mean(x)"] is None
    assert rows["b"]["mean(x)"] == 2.5
    assert rows["a"]["min(x)"] == 5
    allnull = pa.table({"k": [1, 1], "v": pa.array([None, None], pa.float64())})
    r = aggregate_groups(
        allnull, ["k"], [Sum("v"), Count("v", ignore_nulls=True), Count("v")]
    )
    assert r.to_pylist() == [{"k": 1, "sum(v)": None, "count(v)": 0, "count(v)_2": 2}]


def test_std_with_ddof_and_a_single_value():
    rows = _by_key(aggregate_groups(T, ["k"], [Std("y", ddof=0), Std("x")]))
    assert rows["a"]["std(y)"] == 1.5
    assert rows["c"]["std(y)"] == 0.0
    assert math.isnan(rows["c"]["std(x)"])  # one value, ddof=1: NaN as pandas gives


def test_aggregate_fn_from_rows_and_blocks():
    by_row = AggregateFn(
        init=lambda k: 0,
        accumulate_row=lambda a, r: a + 1,
        merge=lambda a, b: a + b,
        name="custom_count",
    )
    by_block = AggregateFn(
        init=lambda k: [],
        accumulate_block=lambda a, b: a + b.column("x").to_pylist(),
        merge=lambda a, b: a + b,
        name="xs",
        finalize=len,
    )
    rows = _by_key(aggregate_groups(T, ["k"], [by_row, by_block]))
    assert rows["a"]["custom_count"] == 2
    assert rows["b"]["xs"] == 2
    with pytest.raises(ValueError, match="Exactly one"):
        AggregateFn(init=lambda k: 0, merge=lambda a, b: a, name="n")
    with pytest.raises(TypeError, match="name"):
        AggregateFn(
            init=lambda k: 0,
            merge=lambda a, b: a,
            name=None,
            accumulate_row=lambda a, r: a,
        )


def test_merge_of_partials_is_the_whole():
    halves = [T.slice(0, 3), T.slice(3)]
    for agg in [
        Sum("x"),
        Mean("y"),
        Std("y"),
        Min("x"),
        Max("y"),
        Count(),
        Quantile("x"),
        Unique("k"),
    ]:
        whole = agg.finalize(agg.accumulate_block(agg.init(None), T))
        a, b = (agg.accumulate_block(agg.init(None), h) for h in halves)
        assert agg.finalize(agg.merge(a, b)) == pytest.approx(whole), agg.name


def test_missing_column_is_a_value_error():
    with pytest.raises(ValueError, match="'zz'"):
        aggregate_groups(T, ["k"], [Sum("zz")])
    with pytest.raises(ValueError, match="has to be provided"):
        AbsMax()


def test_output_names_suffix_repeats():
    assert output_names([Sum("x"), Sum("x"), Sum("x")]) == [
        "sum(x)",
        "sum(x)_2",
        "sum(x)_3",
    ]


values = st.one_of(st.none(), st.integers(-100, 100))


@given(st.lists(st.tuples(st.integers(0, 4), values), min_size=1, max_size=60))
@settings(max_examples=150, deadline=None)
def test_group_aggregates_match_pandas(rows):
    table = pa.table(
        {"g": [r[0] for r in rows], "v": pa.array([r[1] for r in rows], pa.int64())}
    )
    got = aggregate_groups(
        table, ["g"], [Count(), Sum("v"), Min("v"), Max("v"), Mean("v"), Std("v")]
    )
    frame = pd.DataFrame(
        {"g": [r[0] for r in rows], "v": [r[1] for r in rows]}, dtype="float64"
    )
    ref = frame.groupby("g")["v"].agg(["size", "sum", "min", "max", "mean", "std"])
    assert got.column("g").to_pylist() == [int(g) for g in ref.index]
    for name, col in [
        ("count()", "size"),
        ("min(v)", "min"),
        ("max(v)", "max"),
        ("mean(v)", "mean"),
        ("std(v)", "std"),
    ]:
        expected = [None if pd.isna(v) else float(v) for v in ref[col]]
        actual = [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            for v in got.column(name).to_pylist()
        ]
        assert actual == pytest.approx(expected, nan_ok=True), name
    counts = frame.groupby("g")["v"].count()
    sums = [None if counts[g] == 0 else float(s) for g, s in ref["sum"].items()]
    assert [
        None if v is None else float(v) for v in got.column("sum(v)").to_pylist()
    ] == sums


def test_multi_key_groups_keep_each_key_type():
    table = pa.table(
        {"a": [1, 1, 2, None], "b": ["x", "y", "x", "x"], "v": np.arange(4)}
    )
    out = aggregate_groups(table, ["a", "b"], [Sum("v")])
    assert out.schema.field("a").type == pa.int64()
    assert out.to_pylist() == [
        {"a": 1, "b": "x", "sum(v)": 0},
        {"a": 1, "b": "y", "sum(v)": 1},
        {"a": 2, "b": "x", "sum(v)": 2},
        {"a": None, "b": "x", "sum(v)": 3},
    ]


class _GenericCount(Count):
    """A subclass takes the per-group path, not the Arrow hash aggregation."""


class _GenericSum(Sum):
    pass


class _GenericMean(Mean):
    pass


class _GenericMin(Min):
    pass


@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 3)), values),
        min_size=1,
        max_size=50,
    ),
    st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_the_arrow_fast_path_equals_the_per_group_path(rows, ignore_nulls):
    table = pa.table(
        {
            "g": pa.array([r[0] for r in rows], pa.int64()),
            "v": pa.array([r[1] for r in rows], pa.int64()),
        }
    )
    fast = aggregate_groups(
        table,
        ["g"],
        [
            Count(),
            Count("v", ignore_nulls=True),
            Sum("v", ignore_nulls),
            Mean("v", ignore_nulls),
            Min("v", ignore_nulls),
        ],
    )
    slow = aggregate_groups(
        table,
        ["g"],
        [
            _GenericCount(),
            _GenericCount("v", ignore_nulls=True),
            _GenericSum("v", ignore_nulls),
            _GenericMean("v", ignore_nulls),
            _GenericMin("v", ignore_nulls),
        ],
    )
    assert fast.to_pylist() == slow.to_pylist()
    for f, g in zip(fast.schema, slow.schema, strict=True):
        # the per-group path infers types from Python values: all None infers null
        assert f.type == g.type or g.type == pa.null()
