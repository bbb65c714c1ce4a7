"""Dataset: a lazy plan of operators over Arrow blocks; the transforms that extend the plan."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pyarrow as pa

import ember
from ember.data import block as B
from ember.data._consume import ConsumeMixin
from ember.data._dataset_ops import AllToAllMixin
from ember.data._expr import to_arrow_expression
from ember.data._plan import LimitOp, MapSpec, Plan, Source
from ember.data._split import SplitMixin
from ember.data._write import WriteMixin
from ember.data.compute import resolve_compute
from ember.data.datasource import with_parquet_filter

_REMOTE_KEYS = ("num_cpus", "num_gpus", "memory", "resources", "accelerator_type")


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class Dataset(ConsumeMixin, AllToAllMixin, SplitMixin, WriteMixin):
    """A distributed collection of rows, stored as Arrow blocks and built lazily.

    Every transform returns a new Dataset whose plan has one more operator; nothing
    runs until a consuming call (take, iter_batches, write_*, materialize, ...).
    """

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._last_executors: list[Any] = []

    # -- the contract with dataops -------------------------------------------------
    @classmethod
    def _from_block_refs(cls, refs: list[Any], op_name: str) -> Dataset:
        """A lazy Dataset over blocks already in the object store."""
        return cls(Plan(Source(op_name, refs=tuple(refs))))

    def _block_refs(self) -> list[Any]:
        """Execute the plan; the output blocks' refs (in order)."""
        return [ref for ref, _ in self._execute()]

    # -- plan building -------------------------------------------------------------
    @staticmethod
    def _make(plan: Plan, materialized: bool = False) -> Dataset:
        return MaterializedDataset(plan) if materialized else Dataset(plan)

    def _with(self, op: Any) -> Dataset:
        return Dataset(self._plan.with_op(op))

    def _map_op(
        self,
        name: str,
        kind: str,
        fn: Any,
        *,
        batch_size: Any = None,
        batch_format: str | None = "default",
        compute: Any = None,
        concurrency: Any = None,
        fn_args: Iterable[Any] | None = None,
        fn_kwargs: dict[str, Any] | None = None,
        fn_constructor_args: Iterable[Any] | None = None,
        fn_constructor_kwargs: dict[str, Any] | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **options: Any,
    ) -> Dataset:
        if not callable(fn):
            raise TypeError(
                f"{name.split('(')[0]} expects a function or callable class, got {fn!r}"
            )
        remote_args = dict(ray_remote_args or {})
        for key in _REMOTE_KEYS:
            if options.get(key) is not None:
                remote_args[key] = options.pop(key)
        options = {k: v for k, v in options.items() if v is not None}
        if options:
            raise TypeError(
                f"{name.split('(')[0]}() got unexpected options {sorted(options)}"
            )
        cpus = int(ember.cluster_resources().get("CPU", 1))
        per = remote_args.get("num_cpus") or 1
        pool, size = resolve_compute(
            fn,
            compute,
            concurrency,
            fn_constructor_args is not None,
            max(1, int(cpus // per)),
        )
        if batch_size == "default" or batch_size == "auto":
            batch_size = 1024
        if batch_size is not None and (
            not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be a positive integer or None, got {batch_size!r}"
            )
        spec = MapSpec(
            name=name,
            kind=kind,
            fn=fn,
            fn_args=tuple(fn_args or ()),
            fn_kwargs=dict(fn_kwargs or {}),
            fn_constructor_args=tuple(fn_constructor_args or ()),
            fn_constructor_kwargs=dict(fn_constructor_kwargs or {}),
            batch_size=batch_size,
            batch_format=B.check_batch_format(batch_format),
            pool=pool,
            remote_args=remote_args,
            task_pool_size=size,
        )
        return self._with(spec)

    # -- transforms ------------------------------------------------------------------
    def map(self, fn: Callable[..., Any], **kwargs: Any) -> Dataset:
        """Apply ``fn`` to each row (a dict); it returns the new row (a dict)."""
        return self._map_op(f"Map({_fn_name(fn)})", "rows", fn, **kwargs)

    def map_batches(
        self,
        fn: Any,
        *,
        batch_size: Any = None,
        batch_format: str | None = "default",
        **kwargs: Any,
    ) -> Dataset:
        """Apply ``fn`` to batches (dict of numpy arrays, DataFrame or Table)."""
        kwargs.pop("zero_copy_batch", None)
        return self._map_op(
            f"MapBatches({_fn_name(fn)})",
            "batches",
            fn,
            batch_size=batch_size,
            batch_format=batch_format,
            **kwargs,
        )

    def flat_map(self, fn: Callable[..., Any], **kwargs: Any) -> Dataset:
        """Apply ``fn`` to each row; it returns a list of rows."""
        return self._map_op(f"FlatMap({_fn_name(fn)})", "flat", fn, **kwargs)

    def filter(
        self, fn: Callable[..., Any] | None = None, expr: Any = None, **kwargs: Any
    ) -> Dataset:
        """Keep the rows for which ``fn(row)`` is true (or an ``expr`` string holds)."""
        if (fn is None) == (expr is None):
            raise ValueError("Exactly one of 'fn' or 'expr' must be provided.")
        if expr is not None:
            if not isinstance(expr, str):
                raise TypeError(
                    f"ember's filter(expr=...) takes a string expression, got {type(expr).__name__}"
                )
            pushed = self._push_filter(expr) if not kwargs else None
            if pushed is not None:
                return pushed
            return self._map_op(
                f"Filter({expr})",
                "batches",
                _ExprFilter(expr),
                batch_format="pyarrow",
                **kwargs,
            )
        return self._map_op(f"Filter({_fn_name(fn)})", "filter", fn, **kwargs)

    def _push_filter(self, expr: str) -> Dataset | None:
        """A Parquet read with ``expr`` pushed into its scan, when that is possible."""
        source = self._plan.source
        arrow = to_arrow_expression(expr)
        if self._plan.ops or arrow is None or source.read_tasks is None:
            return None
        tasks = with_parquet_filter(source.read_tasks, arrow)
        if tasks is None:
            return None
        return Dataset(Plan(replace(source, read_tasks=tasks)))

    def add_column(
        self,
        col: str,
        fn: Callable[..., Any],
        *,
        batch_format: str | None = "pandas",
        **kwargs: Any,
    ) -> Dataset:
        """Add (or replace) column ``col`` with ``fn(batch)``."""
        return self._map_op(
            f"MapBatches(add_column({col}))",
            "batches",
            _AddColumn(col, fn, batch_format or "pandas"),
            batch_format="pyarrow",
            **kwargs,
        )

    def drop_columns(self, cols: list[str], **kwargs: Any) -> Dataset:
        names = list(cols)
        if len(set(names)) != len(names):
            raise ValueError(f"drop_columns expects unique column names, got {names}")
        return self._map_op(
            "MapBatches(drop_columns)",
            "batches",
            _DropColumns(names),
            batch_format="pyarrow",
            **kwargs,
        )

    def select_columns(self, cols: str | list[str], **kwargs: Any) -> Dataset:
        names = [cols] if isinstance(cols, str) else list(cols)
        if len(set(names)) != len(names):
            raise ValueError(f"select_columns expects unique column names, got {names}")
        return self._map_op(
            "MapBatches(select_columns)",
            "batches",
            _SelectColumns(names),
            batch_format="pyarrow",
            **kwargs,
        )

    def rename_columns(
        self, names: list[str] | dict[str, str], **kwargs: Any
    ) -> Dataset:
        if not isinstance(names, (list, dict)):
            raise TypeError(
                f"rename_columns expects a list or a dict, got {type(names).__name__}"
            )
        return self._map_op(
            "MapBatches(rename_columns)",
            "batches",
            _RenameColumns(names),
            batch_format="pyarrow",
            **kwargs,
        )

    def limit(self, limit: int) -> Dataset:
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        return self._with(LimitOp(limit))

    def __repr__(self) -> str:
        names = self._plan.op_names()
        rows = self._plan.source.known_num_rows() if not self._plan.ops else None
        base = f"Dataset(num_rows={'?' if rows is None else rows})"
        if len(names) == 1:
            return base
        lines = [names[-1]]
        indent = ""
        for name in reversed(names[1:-1]):
            indent += "   "
            lines.append(f"{indent[:-3]}+- {name}")
        lines.append(f"{indent}+- {base}")
        return "\n".join(lines)


class MaterializedDataset(Dataset):
    """A Dataset whose blocks are computed and held in the object store."""


class _AddColumn:
    def __init__(self, col: str, fn: Callable[..., Any], batch_format: str) -> None:
        self.col, self.fn, self.fmt = col, fn, B.check_batch_format(batch_format)

    def __call__(self, table: pa.Table) -> pa.Table:
        value = self.fn(B.to_batch(table, self.fmt))
        if hasattr(value, "to_numpy") and not isinstance(
            value, (pa.Array, pa.ChunkedArray)
        ):
            value = value.to_numpy()
        arr = B.array_from_numpy(value)
        if self.col in table.column_names:
            return table.set_column(table.column_names.index(self.col), self.col, arr)
        return table.append_column(self.col, arr)


class _DropColumns:
    def __init__(self, cols: list[str]) -> None:
        self.cols = cols

    def __call__(self, table: pa.Table) -> pa.Table:
        missing = [c for c in self.cols if c not in table.column_names]
        if missing:
            raise KeyError(
                f"drop_columns: columns {missing} not in the dataset's columns {table.column_names}"
            )
        return table.drop_columns(self.cols)


class _SelectColumns:
    def __init__(self, cols: list[str]) -> None:
        self.cols = cols

    def __call__(self, table: pa.Table) -> pa.Table:
        missing = [c for c in self.cols if c not in table.column_names]
        if missing:
            raise KeyError(
                f"select_columns: columns {missing} not in the dataset's columns {table.column_names}"
            )
        return table.select(self.cols)


class _RenameColumns:
    def __init__(self, names: list[str] | dict[str, str]) -> None:
        self.names = names

    def __call__(self, table: pa.Table) -> pa.Table:
        if isinstance(self.names, dict):
            return table.rename_columns(
                [self.names.get(c, c) for c in table.column_names]
            )
        return table.rename_columns(list(self.names))


class _ExprFilter:
    """A filter from a string expression: Arrow compute when it converts, else pandas eval."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.arrow = to_arrow_expression(expr)

    def __call__(self, table: pa.Table) -> pa.Table:
        if self.arrow is not None:
            return table.filter(self.arrow)
        mask = table.to_pandas().eval(self.expr)
        return table.filter(pa.array(mask.to_numpy(dtype=bool)))
