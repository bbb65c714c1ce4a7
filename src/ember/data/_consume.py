"""Consuming a Dataset: take, count, schema, iteration, conversion, materialize, stats."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ember
from ember.data import block as B
from ember.data._executor import RefMeta, execute
from ember.data._plan import LimitOp, Plan, Source
from ember.data._stats import format_stats
from ember.data.iterator import DataIterator
from ember.data.schema import Schema


class ConsumeMixin:
    """The consuming half of Dataset (executes the plan)."""

    _plan: Plan
    _last_executors: list[Any]
    #: Dataset._make: a new Dataset (or MaterializedDataset) over a plan
    _make: Callable[..., Any]

    def _execute(self) -> Iterator[RefMeta]:
        stream, executors = execute(self._plan)
        self._last_executors = executors
        return stream

    def _limited(self, n: int) -> Any:
        return self._make(self._plan.with_op(LimitOp(n)))

    def _stream_refs(self) -> Iterator[Any]:
        for ref, _ in self._execute():
            yield ref

    def iterator(self) -> DataIterator:
        return DataIterator(self._stream_refs, repr(self))

    def take(self, limit: int = 20) -> list[dict[str, Any]]:
        """The first ``limit`` rows, as dicts."""
        rows: list[dict[str, Any]] = []
        for ref, _ in self._limited(limit)._execute():
            rows.extend(B.iter_rows(ember.get(ref)))
            if len(rows) >= limit:
                break
        return rows[:limit]

    def take_all(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for ref, _ in self._execute():
            rows.extend(B.iter_rows(ember.get(ref)))
            if limit is not None and len(rows) > limit:
                raise ValueError(
                    f"The dataset has more than the given limit of {limit} records."
                )
        return rows

    def take_batch(
        self, batch_size: int = 20, *, batch_format: str | None = "default"
    ) -> Any:
        fmt = B.check_batch_format(batch_format)
        tables = [ember.get(ref) for ref, _ in self._limited(batch_size)._execute()]
        table = B.concat(tables)
        if table.num_rows == 0:
            raise ValueError("The dataset is empty.")
        return B.to_batch(table.slice(0, batch_size), fmt)

    def show(self, limit: int = 20) -> None:
        for _row in self.take(limit):
            pass

    def count(self) -> int:
        if not self._plan.ops:
            known = self._plan.source.known_num_rows()
            if known is not None:
                return known
        return sum(meta.num_rows for _, meta in self._execute())

    def schema(self, fetch_if_missing: bool = True) -> Schema | None:
        source = self._plan.source
        if not self._plan.ops and source.metadata:
            for meta in source.metadata:
                if meta.schema is not None and (meta.num_rows or meta.schema.names):
                    return Schema(meta.schema)
        if not fetch_if_missing:
            return None
        for _, meta in self._limited(1)._execute():
            if meta.schema is not None and meta.schema.names:
                return Schema(meta.schema)
        return None

    def columns(self, fetch_if_missing: bool = True) -> list[str] | None:
        schema = self.schema(fetch_if_missing)
        return schema.names if schema is not None else None

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        return self.iterator().iter_rows()

    def iter_batches(self, **kwargs: Any) -> Iterator[Any]:
        return self.iterator().iter_batches(**kwargs)

    def iter_torch_batches(self, **kwargs: Any) -> Iterator[Any]:
        return self.iterator().iter_torch_batches(**kwargs)

    def to_pandas(self, limit: int | None = None) -> Any:
        tables = [ember.get(ref) for ref, _ in self._execute()]
        table = B.concat(tables)
        if limit is not None and table.num_rows > limit:
            raise ValueError(
                f"the dataset has more than the given limit of {limit} rows: "
                f"{table.num_rows}. Set limit=None to convert all of it."
            )
        return B.to_pandas(table)

    def to_arrow_refs(self) -> list[Any]:
        return [ref for ref, _ in self._execute()]

    def to_numpy_refs(self, *, column: str | None = None) -> list[Any]:
        return [_to_numpy.remote(ref, column) for ref, _ in self._execute()]

    def to_pandas_refs(self) -> list[Any]:
        return [_to_pandas.remote(ref) for ref, _ in self._execute()]

    def materialize(self) -> Any:
        """Execute now and keep the blocks in the object store."""
        items = list(self._execute())
        source = Source(
            self._plan.source.name,
            refs=tuple(r for r, _ in items),
            metadata=tuple(m for _, m in items),
        )
        out = self._make(Plan(source), materialized=True)
        out._last_executors = self._last_executors
        return out

    def num_blocks(self) -> int:
        if not self._plan.ops:
            return self._plan.source.num_inputs()
        return sum(1 for _ in self._execute())

    def size_bytes(self) -> int:
        source = self._plan.source
        if not self._plan.ops and source.metadata is not None:
            return sum(m.size_bytes for m in source.metadata)
        return sum(meta.size_bytes for _, meta in self._execute())

    def stats(self) -> str:
        execs = self._last_executors
        stages = [s for ex in execs for s in ex.stats]
        return format_stats(stages, sum(ex.wall_s for ex in execs))

    def input_files(self) -> list[str]:
        return list(getattr(self._plan.source, "files", ()) or ())


@ember.remote
def _to_numpy(table: Any, column: str | None) -> Any:
    if column is not None:
        return B.column_to_numpy(table.column(column))
    return B.to_batch(table, "numpy")


@ember.remote
def _to_pandas(table: Any) -> Any:
    return B.to_pandas(table)
