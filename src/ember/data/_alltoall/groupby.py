"""Hash-partitioned group-by: aggregations and ``map_groups`` over block refs.

Map tasks send each row to the reducer its key hashes to; each reducer sorts its
rows by key, cuts them into groups and aggregates (or calls the user's
function on) every group. Aggregated output is then sample-sorted by key, so
the result lists groups in key order. Without a key, each block's partial
accumulators come back to the driver, which merges them into one row.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import ember
from ember.data._alltoall import blocks as B, tasks as T
from ember.data._alltoall.exchange import exchange, sort
from ember.data._alltoall.sort_keys import SortKey, group_starts
from ember.data.aggregate import AggregateFn, AggregateFnV2, Count, Max, Mean, Min, Sum

#: the group-by's reducers when ``num_partitions`` is not given (Ray's default hash
#: shuffle also uses 200): fewer when there are fewer input blocks
DEFAULT_PARTITIONS = 200


def output_names(aggs: Sequence[AggregateFn]) -> list[str]:
    """The aggregations' column names, a repeated one suffixed ``_2``, ``_3``... (Ray's rule)."""
    counts: dict[str, int] = collections.defaultdict(int)
    taken: set[str] = set()
    out = []
    for agg in aggs:
        name = agg.name
        while name in taken:
            counts[agg.name] += 1
            name = f"{agg.name}_{counts[agg.name] + 1}"
        taken.add(name)
        out.append(name)
    return out


def _group_key(table: pa.Table, keys: Sequence[str], row: int) -> Any:
    values = tuple(table.column(k)[row].as_py() for k in keys)
    return values[0] if len(values) == 1 else values


def aggregate_groups(
    table: pa.Table, keys: Sequence[str], aggs: Sequence[AggregateFn]
) -> pa.Table:
    """One row per group of ``table``: the key columns, then each aggregation's value."""
    if table.num_rows == 0:
        return pa.table({})
    for agg in aggs:
        agg._validate(table.schema)
    specs = [_arrow_spec(agg) for agg in aggs]
    if all(spec is not None for spec in specs):
        return _arrow_groups(table, keys, aggs, specs)
    ordered = SortKey.of(list(keys)).sort_table(table)
    starts = group_starts(ordered, keys)
    ends = [*starts[1:], ordered.num_rows]
    values: list[list[Any]] = [[] for _ in aggs]
    for lo, hi in zip(starts, ends, strict=True):
        group = ordered.slice(lo, hi - lo)
        key = _group_key(ordered, keys, lo)
        for column, agg in zip(values, aggs, strict=True):
            column.append(agg.finalize(agg.accumulate_block(agg.init(key), group)))
    out = ordered.select(list(keys)).take(pa.array(starts))
    for name, column in zip(output_names(aggs), values, strict=True):
        out = out.append_column(name, pa.array(column))
    return out


def _arrow_spec(agg: AggregateFn) -> tuple[Any, ...] | None:
    """The Arrow hash aggregation computing a built-in exactly as it would (None: no such one)."""
    kind = type(agg)
    if kind not in (Count, Sum, Min, Max, Mean):
        return None
    assert isinstance(agg, AggregateFnV2)
    on, skip = agg.get_target_column(), agg._ignore_nulls
    if kind is Count:
        if on is None:
            return ([], "count_all")
        return (on, "count", pc.CountOptions("only_valid" if skip else "all"))
    if on is None:
        return None
    name = {Sum: "sum", Min: "min", Max: "max", Mean: "mean"}[kind]
    return (on, name, pc.ScalarAggregateOptions(skip_nulls=skip, min_count=1))


def _arrow_groups(
    table: pa.Table, keys: Sequence[str], aggs: Sequence[AggregateFn], specs: list[Any]
) -> pa.Table:
    grouped = table.group_by(list(keys), use_threads=False).aggregate(specs)
    n_keys = len(keys)
    names = grouped.column_names
    keys_first = names[:n_keys] == list(keys)
    key_cols = range(n_keys) if keys_first else range(len(names) - n_keys, len(names))
    agg_cols = range(n_keys, len(names)) if keys_first else range(len(names) - n_keys)
    out = pa.table({k: grouped.column(i) for k, i in zip(keys, key_cols, strict=True)})
    for name, i in zip(output_names(aggs), agg_cols, strict=True):
        out = out.append_column(name, grouped.column(i))
    return SortKey.of(list(keys)).sort_table(out)


@ember.remote
def _aggregate_reduce(
    keys: Sequence[str], aggs: Sequence[AggregateFn], *parts: pa.Table
) -> pa.Table:
    return aggregate_groups(B.concat(parts), keys, aggs)


@ember.remote
def _partial(block: pa.Table, aggs: Sequence[AggregateFn]) -> list[Any]:
    for agg in aggs:
        agg._validate(block.schema if block.num_columns else None)
    return [agg.accumulate_block(agg.init(None), block) for agg in aggs]


@ember.remote
def _column_names(block: pa.Table) -> list[str]:
    return list(block.column_names)


def column_names(refs: list[ember.ObjectRef]) -> list[str]:
    """The columns of the first block that has any (one small task per block until one does)."""
    for ref in refs:
        names: list[str] = ember.get(_column_names.remote(ref))
        if names:
            return names
    return []


def check_keys(refs: list[ember.ObjectRef], keys: Sequence[str]) -> None:
    """Raise ValueError before any exchange when the first block lacks a key column."""
    names = column_names(refs)
    if names:
        B.check_columns(pa.table({n: [] for n in names}), keys)


def aggregate_row(
    refs: list[ember.ObjectRef], aggs: Sequence[AggregateFn]
) -> dict[str, Any]:
    """The aggregations over all rows, as ``{name: value}`` (``Dataset.aggregate``'s answer)."""
    accs = [agg.init(None) for agg in aggs]
    for partial in (
        ember.get([_partial.remote(r, list(aggs)) for r in refs]) if refs else []
    ):
        accs = [agg.merge(a, p) for agg, a, p in zip(aggs, accs, partial, strict=True)]
    names = output_names(aggs)
    return {n: agg.finalize(a) for n, agg, a in zip(names, aggs, accs, strict=True)}


def aggregate(
    refs: list[ember.ObjectRef],
    keys: Sequence[str] | None,
    aggs: Sequence[AggregateFn],
    num_partitions: int | None = None,
) -> list[ember.ObjectRef]:
    """The blocks of a group-by aggregation: one row per group, in key order."""
    if not aggs:
        raise ValueError("Aggregate requires at least one aggregation")
    for agg in aggs:
        if not isinstance(agg, AggregateFn):
            raise TypeError(f"{agg!r} is not an AggregateFn")
    if not keys:
        row = aggregate_row(refs, aggs)
        return [ember.put(pa.table({k: pa.array([v]) for k, v in row.items()}))]
    n = _partitions(refs, num_partitions)
    if n == 0:
        return []
    check_keys(refs, keys)
    mapped = [T.fanout(T.hash_map, n, r, list(keys), n) for r in refs]
    reduced = exchange(mapped, _aggregate_reduce, lambda i: (list(keys), list(aggs)))
    return sort(reduced, list(keys)) if n > 1 else reduced


def _partitions(refs: list[ember.ObjectRef], num_partitions: int | None) -> int:
    if num_partitions is not None:
        if num_partitions < 1:
            raise ValueError(
                f"num_partitions must be a positive integer, got {num_partitions}"
            )
        return num_partitions if refs else 0
    return min(len(refs), DEFAULT_PARTITIONS)


class _GroupMapper:
    """What a map_groups reducer runs: the user's function (or an instance of its class) per group."""

    def __init__(
        self,
        fn: Any,
        batch_format: str | None,
        fn_args: Sequence[Any],
        fn_kwargs: dict[str, Any],
        constructor_args: Sequence[Any],
        constructor_kwargs: dict[str, Any],
    ) -> None:
        self.fn = fn
        self.batch_format = batch_format
        self.fn_args = tuple(fn_args)
        self.fn_kwargs = dict(fn_kwargs)
        self.constructor_args = tuple(constructor_args)
        self.constructor_kwargs = dict(constructor_kwargs)

    def function(self) -> Any:
        """The callable to run: the function, or a new instance of the callable class."""
        if isinstance(self.fn, type):
            return self.fn(*self.constructor_args, **self.constructor_kwargs)
        return self.fn

    def run(self, table: pa.Table, keys: Sequence[str], fn: Any = None) -> pa.Table:
        if table.num_rows == 0:
            return pa.table({})
        if fn is None:
            fn = self.function()
        if keys:
            ordered = SortKey.of(list(keys)).sort_table(table)
            starts = group_starts(ordered, keys)
        else:
            ordered, starts = table, [0]
        ends = [*starts[1:], ordered.num_rows]
        outs = []
        for lo, hi in zip(starts, ends, strict=True):
            batch = to_batch(ordered.slice(lo, hi - lo), self.batch_format)
            outs.append(from_batch(fn(batch, *self.fn_args, **self.fn_kwargs)))
        return B.concat(outs)


@ember.remote
def _map_groups_reduce(
    mapper: _GroupMapper, keys: Sequence[str], *parts: pa.Table
) -> pa.Table:
    return mapper.run(B.concat(parts), keys)


@ember.remote
class _GroupActor:
    """A map_groups reducer for a callable class: the instance is built once per actor."""

    def __init__(self, mapper: _GroupMapper) -> None:
        self.mapper = mapper
        self.fn = mapper.function()

    def run(self, keys: Sequence[str], *parts: pa.Table) -> pa.Table:
        return self.mapper.run(B.concat(parts), keys, self.fn)


def _run_in_actors(
    mapper: _GroupMapper,
    keys: Sequence[str],
    mapped: list[list[ember.ObjectRef]],
    n: int,
    remote_options: dict[str, Any],
    concurrency: int,
) -> list[ember.ObjectRef]:
    """Reducer ``i`` runs on actor ``i % concurrency``; the actors end once every output is in."""
    actor_class: Any = _GroupActor
    cls = actor_class.options(**remote_options) if remote_options else actor_class
    actors = [cls.remote(mapper) for _ in range(min(concurrency, n))]
    out = [
        actors[i % len(actors)].run.remote(keys, *[parts[i] for parts in mapped])
        for i in range(n)
    ]
    pending: list[Any] = list(out)
    ember.wait(pending, num_returns=len(pending), fetch_local=False)
    for actor in actors:
        ember.kill(actor)
    return out


def map_groups(
    refs: list[ember.ObjectRef],
    keys: Sequence[str] | None,
    mapper: _GroupMapper,
    *,
    num_partitions: int | None = None,
    remote_options: dict[str, Any] | None = None,
    concurrency: int | None = None,
) -> list[ember.ObjectRef]:
    """The blocks of ``map_groups``: per reducer, the function's outputs of its groups in key order."""
    check_format(mapper.batch_format)
    keys = list(keys or [])
    n = 1 if not keys else _partitions(refs, num_partitions)
    if n == 0 or not refs:
        return []
    if keys:
        check_keys(refs, keys)
        mapped = [T.fanout(T.hash_map, n, r, keys, n) for r in refs]
    else:
        mapped = [[r] for r in refs]
    if isinstance(mapper.fn, type):
        return _run_in_actors(
            mapper, keys, mapped, n, remote_options or {}, concurrency or 1
        )
    task = (
        _map_groups_reduce.options(**remote_options)
        if remote_options
        else _map_groups_reduce
    )
    out: list[ember.ObjectRef] = []
    for i in range(n):
        if concurrency is not None and len(out) >= concurrency:
            in_flight: list[Any] = list(out)
            ember.wait(
                in_flight, num_returns=len(out) - concurrency + 1, fetch_local=False
            )
        out.append(task.remote(mapper, keys, *[parts[i] for parts in mapped]))
    return out


# the batch formats a map_groups function sees: "default"/"numpy" (a dict of numpy
# arrays), "pandas", "pyarrow" (or None: the table itself); it may return any of them
BATCH_FORMATS = ("default", "numpy", "pandas", "pyarrow", None)


def check_format(batch_format: str | None) -> None:
    if batch_format not in BATCH_FORMATS:
        raise ValueError(
            f"The given batch format {batch_format!r} isn't allowed (must be one of "
            f"{list(BATCH_FORMATS)})."
        )


def to_batch(table: pa.Table, batch_format: str | None) -> Any:
    if batch_format in ("default", "numpy"):
        return {
            name: table.column(name).to_numpy(zero_copy_only=False)
            for name in table.column_names
        }
    if batch_format == "pandas":
        return table.to_pandas()
    return table


def from_batch(batch: Any) -> pa.Table:
    """The Arrow table of a function's output batch; a TypeError names what came back instead."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False)
    if isinstance(batch, dict):
        columns = {}
        for name, values in batch.items():
            arr = (
                np.asarray(values)
                if not isinstance(values, pa.Array | pa.ChunkedArray)
                else values
            )
            if isinstance(arr, np.ndarray) and arr.ndim > 1:
                columns[name] = pa.array(list(arr))
            else:
                columns[name] = pa.array(arr) if isinstance(arr, np.ndarray) else arr
        return pa.table(columns)
    raise TypeError(
        "A map_groups function must return a dict of arrays, a pandas.DataFrame or a "
        f"pyarrow.Table, got {type(batch).__name__}"
    )
