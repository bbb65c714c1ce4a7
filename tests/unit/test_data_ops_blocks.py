"""The pure parts of ember.data's all-to-all operations: slicing plans, zip, sort ranges, scatter."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from ember.data._alltoall import blocks as B
from ember.data._alltoall.sort_keys import SortKey, group_starts


def _blocks(counts):
    start = 0
    out = []
    for n in counts:
        out.append(pa.table({"id": list(range(start, start + n))}))
        start += n
    return out


@given(st.lists(st.integers(0, 7), max_size=6), st.integers(1, 9))
@settings(max_examples=200, deadline=None)
def test_slice_plan_keeps_every_row_in_order(counts, num_blocks):
    blocks = _blocks(counts)
    bounds = B.even_bounds(sum(counts), num_blocks)
    plan = B.slice_plan(counts, bounds)
    outs = [B.take_pieces(p, blocks) for p in plan]
    assert len(outs) == num_blocks
    rows = [r for t in outs if t.num_columns for r in t.column("id").to_pylist()]
    assert rows == list(range(sum(counts)))
    sizes = [t.num_rows for t in outs]
    assert max(sizes) - min(sizes) <= 1


def test_even_bounds_cut_as_ray_does():
    # ray.data.range(10, override_num_blocks=3).repartition(4): blocks of 2, 3, 2, 3 rows
    bounds = B.even_bounds(10, 4)
    assert [b - a for a, b in itertools.pairwise(bounds)] == [2, 3, 2, 3]
    with pytest.raises(ValueError, match="positive"):
        B.even_bounds(10, 0)


def test_zip_suffixes_taken_names_with_the_first_free_number():
    left = pa.table({"id": [1, 2], "id_1": [3, 4]})
    out = B.zip_tables(left, pa.table({"id": [5, 6], "x": [7, 8]}))
    assert out.column_names == ["id", "id_1", "id_2", "x"]
    assert out.column("id_2").to_pylist() == [5, 6]


def test_missing_column_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"'zz'.*columns: \['a'\]"):
        B.check_columns(pa.table({"a": [1]}), ["zz"])


def test_sort_key_orders_nulls_last_both_ways():
    t = pa.table({"k": ["b", None, "a", "c"], "x": [1, 2, None, 4]})
    up = SortKey.of("k").sort_table(t)
    assert up.column("k").to_pylist() == ["a", "b", "c", None]
    down = SortKey.of(["k"], [True]).sort_table(t)
    assert down.column("k").to_pylist() == ["c", "b", "a", None]
    key = SortKey.of(["x"], True)
    assert key.compare((None,), (5,)) == 1
    assert key.compare((5,), (None,)) == -1
    assert key.compare((5,), (4,)) == -1


def test_sort_key_rejects_mismatched_descending():
    with pytest.raises(ValueError, match="descending"):
        SortKey.of(["a", "b"], [True])


keys = st.one_of(st.none(), st.integers(-5, 5))


@given(
    st.lists(st.tuples(keys, keys), max_size=40),
    st.lists(st.tuples(keys, keys), max_size=8),
    st.booleans(),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_split_sorted_ranges_concatenate_to_the_sort(rows, sample, d1, d2):
    key = SortKey.of(["a", "b"], [d1, d2])
    t = pa.table(
        {
            "a": pa.array([r[0] for r in rows], pa.int64()),
            "b": pa.array([r[1] for r in rows], pa.int64()),
        }
    )
    ordered = key.sort_table(t)
    bounds = key.boundaries(sample, 4)
    parts = key.split_sorted(ordered, bounds)
    assert len(parts) == len(bounds) + 1
    joined = [r for p in parts for r in key.rows(p)]
    assert joined == key.rows(ordered)
    # a key never straddles two ranges
    seen = {}
    for i, p in enumerate(parts):
        for r in key.rows(p):
            assert seen.setdefault(r, i) == i


def test_group_starts_treat_nulls_as_one_group():
    t = SortKey.of("k").sort_table(pa.table({"k": [2, None, 1, 2, None]}))
    assert group_starts(t, ["k"]) == [0, 1, 3]


def test_key_hash_is_equal_for_equal_keys_across_types_and_nulls():
    a = pa.table({"k": pa.array([1, None, 3], pa.int64()), "s": ["x", None, "y"]})
    b = pa.table({"k": pa.array([3.0, 1.0]), "s": ["y", "x"]})
    ha, hb = B.key_hash(a, ["k", "s"]), B.key_hash(b, ["k", "s"])
    assert ha[0] == hb[1]
    assert ha[2] == hb[0]


def test_scatter_sends_every_row_once():
    t = pa.table({"id": list(range(100))})
    parts = B.random_parts(t, 7, np.random.default_rng(0))
    assert sorted(r for p in parts for r in p.column("id").to_pylist()) == list(
        range(100)
    )
    hashed = B.hash_parts(t, ["id"], 3)
    assert sum(p.num_rows for p in hashed) == 100
