"""GroupedData: the result of ``Dataset.groupby(key)`` and its aggregations (Ray's ``GroupedData``).

It holds the dataset and the key; each method materializes the dataset's
blocks (``Dataset._block_refs``), runs the hash-partitioned group-by of
``ember.data._alltoall.groupby`` and wraps the output blocks as a new Dataset
(``Dataset._from_block_refs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import ember
from ember.data._alltoall import groupby as G
from ember.data.aggregate import AggregateFn, Count, Max, Mean, Min, Std, Sum

__all__ = ["GroupedData"]


class Dataset(Protocol):
    """What GroupedData needs of a Dataset (the contract with ``ember.data.dataset``)."""

    def _block_refs(self) -> list[ember.ObjectRef]: ...

    @classmethod
    def _from_block_refs(cls, refs: list[ember.ObjectRef], op_name: str) -> Dataset: ...


class GroupedData:
    """A dataset grouped by ``key`` (a column, a list of columns, or None for one group)."""

    def __init__(
        self,
        dataset: Dataset,
        key: str | list[str] | None,
        *,
        num_partitions: int | None = None,
    ) -> None:
        valid = key is None or isinstance(key, str)
        if isinstance(key, list | tuple):
            valid = all(isinstance(k, str) for k in key)
        if not valid:
            raise TypeError(
                f"Group-by key must be a column name or a list of them, got {key!r}"
            )
        self._dataset = dataset
        self._key = key
        self._num_partitions = num_partitions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dataset={self._dataset}, key={self._key!r})"

    def _keys(self) -> list[str]:
        if self._key is None:
            return []
        return [self._key] if isinstance(self._key, str) else list(self._key)

    def aggregate(self, *aggs: AggregateFn) -> Dataset:
        """One row per group: the key columns, then one column per aggregation."""
        return self._aggregate(self._dataset._block_refs(), list(aggs))

    def _aggregate(
        self, refs: list[ember.ObjectRef], aggs: list[AggregateFn]
    ) -> Dataset:
        out = G.aggregate(refs, self._keys(), aggs, self._num_partitions)
        return type(self._dataset)._from_block_refs(out, "Aggregate")

    def _aggregate_on(
        self,
        agg_cls: Callable[..., AggregateFn],
        on: str | list[str] | None,
        **kwargs: Any,
    ) -> Dataset:
        refs = self._dataset._block_refs()  # executes the plan: once per call
        if on is None:
            keys = set(self._keys())
            on = [c for c in G.column_names(refs) if c not in keys]
        columns = [on] if isinstance(on, str) else list(on)
        return self._aggregate(refs, [agg_cls(on=c, **kwargs) for c in columns])

    def count(self) -> Dataset:
        """The number of rows of each group, in column ``count()``."""
        return self.aggregate(Count())

    def sum(
        self, on: str | list[str] | None = None, ignore_nulls: bool = True
    ) -> Dataset:
        """The sum of ``on`` (all non-key columns by default) per group, in ``sum(<col>)``."""
        return self._aggregate_on(Sum, on, ignore_nulls=ignore_nulls)

    def min(
        self, on: str | list[str] | None = None, ignore_nulls: bool = True
    ) -> Dataset:
        """The minimum of ``on`` per group, in ``min(<col>)``."""
        return self._aggregate_on(Min, on, ignore_nulls=ignore_nulls)

    def max(
        self, on: str | list[str] | None = None, ignore_nulls: bool = True
    ) -> Dataset:
        """The maximum of ``on`` per group, in ``max(<col>)``."""
        return self._aggregate_on(Max, on, ignore_nulls=ignore_nulls)

    def mean(
        self, on: str | list[str] | None = None, ignore_nulls: bool = True
    ) -> Dataset:
        """The mean of ``on`` per group, in ``mean(<col>)``."""
        return self._aggregate_on(Mean, on, ignore_nulls=ignore_nulls)

    def std(
        self,
        on: str | list[str] | None = None,
        ddof: int = 1,
        ignore_nulls: bool = True,
    ) -> Dataset:
        """The standard deviation of ``on`` per group, in ``std(<col>)``."""
        return self._aggregate_on(Std, on, ddof=ddof, ignore_nulls=ignore_nulls)

    def map_groups(
        self,
        fn: Any,
        *,
        zero_copy_batch: bool = True,
        compute: Any = None,
        batch_format: str | None = "default",
        fn_args: Iterable[Any] | None = None,
        fn_kwargs: dict[str, Any] | None = None,
        fn_constructor_args: Iterable[Any] | None = None,
        fn_constructor_kwargs: dict[str, Any] | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        memory: float | None = None,
        concurrency: int | tuple[int, int] | None = None,
        ray_remote_args_fn: Callable[[], dict[str, Any]] | None = None,
        **ray_remote_args: Any,
    ) -> Dataset:
        """Call ``fn`` on each group (one batch holding all its rows); the outputs form the result.

        A callable class runs in ``concurrency`` actors (the upper bound of a
        ``(min, max)`` pair; one without it), each constructing it once with
        ``fn_constructor_args``/``fn_constructor_kwargs``; for a function,
        ``concurrency`` caps how many reduce tasks run at once.
        """
        if compute is not None:
            raise NotImplementedError(
                "map_groups(compute=...) is not supported; use concurrency="
            )
        if not callable(fn):
            raise TypeError(
                f"map_groups expects a function or a callable class, got {fn!r}"
            )
        options = dict(ray_remote_args)
        if ray_remote_args_fn is not None:
            options.update(ray_remote_args_fn())
        for name, value in (
            ("num_cpus", num_cpus),
            ("num_gpus", num_gpus),
            ("memory", memory),
        ):
            if value is not None:
                options[name] = value
        mapper = G._GroupMapper(
            fn,
            batch_format,
            list(fn_args or ()),
            dict(fn_kwargs or {}),
            list(fn_constructor_args or ()),
            dict(fn_constructor_kwargs or {}),
        )
        limit = concurrency[1] if isinstance(concurrency, tuple) else concurrency
        refs = G.map_groups(
            self._dataset._block_refs(),
            self._keys(),
            mapper,
            num_partitions=self._num_partitions,
            remote_options=options,
            concurrency=limit,
        )
        return type(self._dataset)._from_block_refs(refs, "MapGroups")
