"""The all-to-all Dataset methods: thin calls into ember.data._alltoall (built by dataops).

Each is a barrier in the plan (AllToAllOp): the blocks before it are materialized,
handed to the operation, and the rest of the pipeline streams from its output. The
aggregations call ember.data.aggregate over the materialized blocks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ember.data._plan import AllToAllOp, Plan


def _module(name: str, method: str) -> Any:
    try:
        return importlib.import_module(f"ember.data.{name}")
    except ImportError as exc:
        if exc.name != f"ember.data.{name}":
            raise
        raise NotImplementedError(
            f"Dataset.{method} is not available yet: ember.data.{name} (the all-to-all "
            "operations) is not installed in this build"
        ) from exc


class AllToAllMixin:
    _plan: Plan
    _block_refs: Callable[[], list[Any]]
    _from_block_refs: Callable[[list[Any], str], Any]
    columns: Callable[..., list[str] | None]
    _make: Callable[..., Any]

    def _barrier(self, name: str, method: str, fn: Any) -> Any:
        _module("_alltoall", method)  # fail at the call, not at execution
        return self._make(self._plan.with_op(AllToAllOp(name, fn)))

    def repartition(
        self,
        num_blocks: int | None = None,
        target_num_rows_per_block: int | None = None,
        *,
        strict: bool = False,
        shuffle: bool = False,
        keys: list[str] | None = None,
        sort: bool = False,
    ) -> Any:
        if num_blocks is None or target_num_rows_per_block is not None or keys or sort:
            raise NotImplementedError(
                "Dataset.repartition supports num_blocks (and shuffle=) only in ember"
            )
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        ops = _module("_alltoall", "repartition")
        return self._barrier(
            f"Repartition(num_blocks={num_blocks})",
            "repartition",
            lambda refs: ops.repartition(refs, num_blocks, shuffle=shuffle),
        )

    def random_shuffle(
        self,
        *,
        seed: int | None = None,
        num_blocks: int | None = None,
        **ray_remote_args: Any,
    ) -> Any:
        ops = _module("_alltoall", "random_shuffle")
        return self._barrier(
            "RandomShuffle",
            "random_shuffle",
            lambda refs: ops.random_shuffle(refs, seed=seed, num_blocks=num_blocks),
        )

    def randomize_block_order(self, *, seed: int | None = None) -> Any:
        ops = _module("_alltoall", "randomize_block_order")
        return self._barrier(
            "RandomizeBlockOrder",
            "randomize_block_order",
            lambda refs: ops.randomize_block_order(refs, seed=seed),
        )

    def sort(
        self,
        key: str | list[str],
        descending: bool | list[bool] = False,
        boundaries: Any = None,
    ) -> Any:
        if boundaries is not None:
            raise NotImplementedError(
                "Dataset.sort(boundaries=...) is not supported by ember"
            )
        ops = _module("_alltoall", "sort")
        return self._barrier(
            f"Sort({key})", "sort", lambda refs: ops.sort(refs, key, descending)
        )

    def union(self, *other: Any) -> Any:
        ops = _module("_alltoall", "union")
        datasets = [self, *other]
        return self._from_block_refs(
            ops.union([d._block_refs() for d in datasets]),
            "Union",
        )

    def zip(self, *other: Any) -> Any:
        ops = _module("_alltoall", "zip")
        refs = self._block_refs()
        for d in other:
            refs = ops.zip(refs, d._block_refs())
        return self._from_block_refs(refs, "Zip")

    def unique(self, column: str, ignore_nulls: bool = False) -> list[Any]:
        ops = _module("_alltoall", "unique")
        values = list(ops.unique(self._block_refs(), column))
        return [v for v in values if v is not None] if ignore_nulls else values

    def groupby(
        self, key: str | list[str] | None, num_partitions: int | None = None
    ) -> Any:
        mod = _module("grouped_data", "groupby")
        return mod.GroupedData(self, key, num_partitions=num_partitions)

    def aggregate(self, *aggs: Any) -> Any:
        """Aggregate the whole dataset: ``{agg.name: value}`` (None when it is empty)."""
        _module("aggregate", "aggregate")
        if not aggs:
            raise ValueError("Dataset.aggregate needs at least one AggregateFn")
        refs = self._block_refs()
        if not refs:
            return None
        ops = _module("_alltoall", "aggregate")
        return ops.aggregate_row(refs, list(aggs))  # nulls as Ray treats them

    def _simple_agg(
        self, method: str, cls_name: str, on: Any, ignore_nulls: bool, **kw: Any
    ) -> Any:
        agg = _module("aggregate", method)
        cls = getattr(agg, cls_name)
        if on is None:  # every column, as Ray does
            cols = list(self.columns() or [])
        else:
            cols = [on] if isinstance(on, str) else list(on)
        result = self.aggregate(
            *[cls(c, ignore_nulls=ignore_nulls, **kw) for c in cols]
        )
        if result is None:
            return None
        values = list(result.values())
        return (
            values[0]
            if isinstance(on, str) or (on is None and len(values) == 1)
            else result
        )

    def sum(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple_agg("sum", "Sum", on, ignore_nulls)

    def min(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple_agg("min", "Min", on, ignore_nulls)

    def max(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple_agg("max", "Max", on, ignore_nulls)

    def mean(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._simple_agg("mean", "Mean", on, ignore_nulls)

    def std(
        self,
        on: str | list[str] | None = None,
        ddof: int = 1,
        ignore_nulls: bool = True,
    ) -> Any:
        return self._simple_agg("std", "Std", on, ignore_nulls, ddof=ddof)
