"""Apply a stage's fused map operators to blocks (runs inside tasks and actors; pure of ember)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from ember.data import block as B
from ember.data._plan import MapSpec
from ember.exceptions import UserCodeException


def _describe(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...]"


def _fail(op: MapSpec, what: str, exc: BaseException) -> UserCodeException:
    err = UserCodeException(
        f"UDF failed to process a data block: operator {op.name} raised "
        f"{type(exc).__name__}: {exc} (on {what})"
    )
    err.__cause__ = exc
    return err


def make_callable(op: MapSpec) -> Callable[..., Any]:
    """The function to call: the user's function, or an instance of the user's class."""
    if op.is_class:
        try:
            return op.fn(*op.fn_constructor_args, **op.fn_constructor_kwargs)
        except Exception as exc:
            raise _fail(op, "constructing the callable class", exc) from exc
    return op.fn


def _batches(table: pa.Table, batch_size: int | None) -> Iterator[pa.Table]:
    if batch_size is None or table.num_rows <= batch_size:
        yield table
        return
    for start in range(0, table.num_rows, batch_size):
        yield table.slice(start, batch_size)


def _apply_batches(
    op: MapSpec, fn: Callable[..., Any], table: pa.Table
) -> Iterator[pa.Table]:
    for piece in _batches(table, op.batch_size):
        batch = B.to_batch(piece, op.batch_format)
        try:
            out = fn(batch, *op.fn_args, **op.fn_kwargs)
            outs = list(out) if _is_generator(out) else [out]
        except Exception as exc:
            raise _fail(
                op,
                f"a batch of {piece.num_rows} rows: {_describe(piece.slice(0, 3).to_pylist())}",
                exc,
            ) from exc
        for result in outs:
            try:
                yield B.from_batch(result)
            except (TypeError, pa.ArrowException, ValueError) as exc:
                raise _fail(
                    op, f"its returned batch of type {type(result).__name__}", exc
                ) from exc


def _is_generator(value: Any) -> bool:
    import types

    return isinstance(value, types.GeneratorType)


def _apply_rows(op: MapSpec, fn: Callable[..., Any], table: pa.Table) -> pa.Table:
    out: list[Any] = []
    mask: list[bool] = []
    for row in B.iter_rows(table):
        try:
            result = fn(row, *op.fn_args, **op.fn_kwargs)
        except Exception as exc:
            raise _fail(op, f"row {_describe(row)}", exc) from exc
        if op.kind == "rows":
            if not isinstance(result, dict):
                raise _fail(
                    op,
                    f"row {_describe(row)}",
                    TypeError(
                        f"map() must return a dict of column name to value, got {type(result).__name__}"
                    ),
                )
            out.append(result)
        elif op.kind == "flat":
            out.extend(result)
        else:
            mask.append(bool(result))
    if op.kind == "filter":
        return table.filter(pa.array(mask, type=pa.bool_()))
    return B.table_from_rows(out)


def apply_op(
    op: MapSpec, fn: Callable[..., Any], tables: Iterator[pa.Table]
) -> Iterator[pa.Table]:
    for table in tables:
        if op.kind == "batches":
            yield from _apply_batches(op, fn, table)
        else:
            yield _apply_rows(op, fn, table)


def run_ops(
    ops: list[MapSpec], fns: list[Callable[..., Any]], tables: Iterator[pa.Table]
) -> pa.Table:
    """Run fused operators over the input blocks; one output block."""
    stream: Iterator[pa.Table] = tables
    for op, fn in zip(ops, fns, strict=True):
        stream = apply_op(op, fn, stream)
    return B.concat(list(stream))
