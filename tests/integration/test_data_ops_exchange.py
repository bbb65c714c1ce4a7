"""ember.data's all-to-all operations on a real local cluster, over blocks made with ember.put.

Each result is checked against the same operation done in memory with pandas/pyarrow.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

import ember
from ember.data import _alltoall

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def _put(tables):
    return [ember.put(t) for t in tables]


def _rows(refs, column="id"):
    return [
        v
        for t in ember.get(refs)
        if t.num_columns
        for v in t.column(column).to_pylist()
    ]


def _range_blocks(n, num_blocks):
    bounds = [(i * n) // num_blocks for i in range(num_blocks + 1)]
    return _put(
        [pa.table({"id": list(range(a, b))}) for a, b in itertools.pairwise(bounds)]
    )


def test_repartition_splits_and_merges_in_order(cluster):
    refs = _range_blocks(10, 3)
    out = _alltoall.repartition(refs, 4, shuffle=False)
    assert [t.num_rows for t in ember.get(out)] == [2, 3, 2, 3]
    assert _rows(out) == list(range(10))
    wide = ember.get(_alltoall.repartition(refs, 12, shuffle=False))
    assert [t.num_rows for t in wide].count(0) == 2
    assert all(t.column_names == ["id"] for t in wide)  # empty blocks keep the schema
    merged = _alltoall.repartition(_range_blocks(10, 5), 2, shuffle=False)
    assert [t.num_rows for t in ember.get(merged)] == [5, 5]


def test_repartition_with_shuffle_keeps_the_rows(cluster):
    out = _alltoall.repartition(_range_blocks(50, 2), 3, shuffle=True)
    assert len(out) == 3
    rows = _rows(out)
    assert sorted(rows) == list(range(50))
    assert rows != list(range(50))
    with pytest.raises(ValueError):
        _alltoall.repartition(out, 0, shuffle=False)


def test_randomize_block_order_is_seeded(cluster):
    refs = _range_blocks(20, 10)
    a = _alltoall.randomize_block_order(refs, seed=3)
    b = _alltoall.randomize_block_order(refs, seed=3)
    assert [r.hex() for r in a] == [r.hex() for r in b]
    assert sorted(_rows(a)) == list(range(20))
    assert _rows(a) != list(range(20))


def test_union_and_zip(cluster):
    u = _alltoall.union([_range_blocks(2, 1), _range_blocks(3, 2)])
    assert _rows(u) == [0, 1, 0, 1, 2]
    left = _range_blocks(7, 3)
    right = _put(
        [
            pa.table({"id": [10, 11], "x": ["a", "b"]}),
            pa.table({"id": list(range(12, 17)), "x": list("cdefg")}),
        ]
    )
    z = _alltoall.zip(left, right)
    tables = ember.get(z)
    assert [t.num_rows for t in tables] == [t.num_rows for t in ember.get(left)]
    assert tables[0].column_names == ["id", "id_1", "x"]
    assert _rows(z, "id_1") == list(range(10, 17))
    again = _alltoall.zip(z, _range_blocks(7, 1))
    assert ember.get(again)[0].column_names == ["id", "id_1", "x", "id_2"]
    with pytest.raises(ValueError, match="different number of rows: 7, 4"):
        _alltoall.zip(left, _range_blocks(4, 1))


def test_unique_keeps_first_appearance_and_nulls(cluster):
    refs = _put([pa.table({"k": ["b", "a", None]}), pa.table({"k": ["b", "c", "a"]})])
    assert _alltoall.unique(refs, "k") == ["b", "a", None, "c"]
    assert _alltoall.unique(refs, "k", ignore_nulls=True) == ["b", "a", "c"]
    with pytest.raises(ValueError, match="'zz'"):
        _alltoall.unique(refs, "zz")


def _frame(seed, n, blocks):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, n)
    b = rng.normal(size=n)
    mask = rng.random(n) < 0.1
    a_arr = pa.array(a, mask=mask)
    table = pa.table(
        {"a": a_arr, "b": b, "s": [f"s{v}" for v in rng.integers(0, 50, n)]}
    )
    bounds = [(i * n) // blocks for i in range(blocks + 1)]
    return table, _put(
        [table.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]
    )


@pytest.mark.parametrize("descending", [False, True, [True, False]])
def test_sort_matches_an_in_memory_sort(cluster, descending):
    table, refs = _frame(1, 400, 5)
    out = _alltoall.sort(refs, ["a", "b"], descending)
    assert len(out) == 5
    got = pa.concat_tables([t for t in ember.get(out) if t.num_columns])
    flags = [descending] * 2 if isinstance(descending, bool) else descending
    order = [
        (c, "descending" if d else "ascending")
        for c, d in zip(["a", "b"], flags, strict=True)
    ]
    expected = table.sort_by(order)
    assert got.column("a").to_pylist() == expected.column("a").to_pylist()
    assert got.column("b").to_pylist() == expected.column("b").to_pylist()
    assert got.column("a").to_pylist()[-1] is None  # nulls last, as Ray puts them


def test_sort_by_a_missing_column_is_a_value_error(cluster):
    _, refs = _frame(2, 20, 2)
    with pytest.raises(ValueError, match="no such column"):
        _alltoall.sort(refs, "zz")


def test_sort_of_skewed_and_empty_inputs(cluster):
    refs = _put([pa.table({"k": [1] * 30}), pa.table({"k": [1] * 5 + [0]})])
    out = _alltoall.sort(refs, "k")
    assert _rows(out, "k") == [0] + [1] * 35
    assert _alltoall.sort([], "k") == []


def test_random_shuffle_is_seeded_and_keeps_rows(cluster):
    refs = _range_blocks(100, 4)
    a = _rows(_alltoall.random_shuffle(refs, seed=7, num_blocks=None))
    b = _rows(_alltoall.random_shuffle(refs, seed=7, num_blocks=None))
    assert a == b
    assert sorted(a) == list(range(100))
    assert a != list(range(100))
    out = _alltoall.random_shuffle(refs, seed=None, num_blocks=3)
    assert len(out) == 3
    assert sorted(_rows(out)) == list(range(100))


@pytest.mark.slow
def test_bigger_sort_shuffle_and_groupby_match_pandas(cluster):
    from ember.data._alltoall import aggregate
    from ember.data.aggregate import Count, Sum

    rng = np.random.default_rng(11)
    n = 400_000
    table = pa.table({"g": rng.integers(0, 5000, n), "v": rng.random(n)})
    bounds = [(i * n) // 12 for i in range(13)]
    refs = _put([table.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)])
    ordered = pa.concat_tables(ember.get(_alltoall.sort(refs, "v", True)))
    assert ordered.column("v").to_pylist() == sorted(
        table.column("v").to_pylist(), reverse=True
    )
    shuffled = pa.concat_tables(
        ember.get(_alltoall.random_shuffle(refs, seed=1, num_blocks=7))
    )
    assert sorted(shuffled.column("v").to_pylist()) == sorted(
        table.column("v").to_pylist()
    )
    grouped = pa.concat_tables(
        [
            t
            for t in ember.get(aggregate(refs, ["g"], [Count(), Sum("v")]))
            if t.num_columns
        ]
    )
    ref = table.to_pandas().groupby("g")["v"].agg(["size", "sum"])
    assert grouped.column("g").to_pylist() == list(ref.index)
    assert grouped.column("count()").to_pylist() == list(ref["size"])
    assert grouped.column("sum(v)").to_pylist() == pytest.approx(list(ref["sum"]))
