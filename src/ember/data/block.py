"""Blocks: pyarrow Tables and the conversions between them, rows and batch formats (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

#: the batch formats map_batches / iter_batches accept ("default" is "numpy", as in Ray)
BATCH_FORMATS = ("default", "numpy", "pandas", "pyarrow")

Block = pa.Table


@dataclass(frozen=True)
class BlockMetadata:
    """What the executor knows about a block without fetching it."""

    num_rows: int
    size_bytes: int
    schema: pa.Schema | None
    #: seconds the producing task spent (0 for blocks made in the driver)
    exec_s: float = 0.0


def metadata_of(table: pa.Table, exec_s: float = 0.0) -> BlockMetadata:
    return BlockMetadata(table.num_rows, table.nbytes, table.schema, exec_s)


def check_batch_format(batch_format: str | None) -> str:
    fmt = "default" if batch_format is None else batch_format
    if fmt not in BATCH_FORMATS:
        raise ValueError(
            f"batch_format must be one of {list(BATCH_FORMATS)} or None, got {batch_format!r}"
        )
    return "numpy" if fmt == "default" else fmt


def _is_tensor_type(t: pa.DataType) -> bool:
    return isinstance(t, pa.FixedShapeTensorType)


def column_to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    """One column as a numpy array (tensor columns as an (n, *shape) array)."""
    if _is_tensor_type(col.type):
        if col.num_chunks == 0:
            return np.empty(
                (0, *col.type.shape), dtype=col.type.value_type.to_pandas_dtype()
            )
        parts = [chunk.to_numpy_ndarray() for chunk in col.chunks]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
    arr = col.to_numpy()
    if arr.dtype == object and len(arr) and isinstance(arr[0], np.ndarray):
        try:
            return np.stack(list(arr))
        except ValueError:
            return arr
    return arr


def array_from_numpy(arr: Any) -> pa.Array:
    """A column from a numpy array or a list; ndim > 1 becomes a fixed-shape tensor column."""
    if isinstance(arr, (pa.Array, pa.ChunkedArray)):
        return arr
    if not isinstance(arr, np.ndarray):
        values = list(arr)
        if values and all(isinstance(v, np.ndarray) for v in values):
            shapes = {v.shape for v in values}
            if len(shapes) == 1:
                return array_from_numpy(np.stack(values))
            return pa.array([v.tolist() for v in values])
        return pa.array(values)
    if arr.ndim > 1:
        flat = np.ascontiguousarray(arr)
        return pa.FixedShapeTensorArray.from_numpy_ndarray(flat)
    if arr.dtype == object:
        return array_from_numpy(list(arr))
    return pa.array(arr)


def table_from_columns(columns: Mapping[str, Any]) -> pa.Table:
    names = list(columns)
    arrays = [array_from_numpy(columns[n]) for n in names]
    return pa.Table.from_arrays(arrays, names=names)


def table_from_rows(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """A block from dict rows (numpy values of one shape become a tensor column)."""
    rows = list(rows)
    if not rows:
        return pa.table({})
    names: list[str] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise TypeError(
                f"a row must be a dict of column name to value, got {type(row).__name__}: {row!r}"
            )
        for key in row:
            if key not in names:
                names.append(key)
    return table_from_columns({n: [row.get(n) for row in rows] for n in names})


def to_batch(table: pa.Table, batch_format: str) -> Any:
    """A block in a user's batch format ("numpy", "pandas" or "pyarrow")."""
    if batch_format == "pyarrow":
        return table
    if batch_format == "pandas":
        return to_pandas(table)
    return {name: column_to_numpy(table.column(name)) for name in table.column_names}


def to_pandas(table: pa.Table) -> Any:
    import pandas as pd

    if not any(_is_tensor_type(f.type) for f in table.schema):
        return table.to_pandas()
    data = {}
    for name in table.column_names:
        col = table.column(name)
        data[name] = (
            list(column_to_numpy(col)) if _is_tensor_type(col.type) else col.to_pandas()
        )
    return pd.DataFrame(data)


def from_batch(batch: Any) -> pa.Table:
    """A block from what a user's function returned (dict of arrays, DataFrame or Table)."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        return table_from_columns(batch)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed with ember.data
        pd = None
    if pd is not None and isinstance(batch, pd.DataFrame):
        return _table_from_pandas(batch)
    raise TypeError(
        "a batch must be a dict of column name to numpy array, a pandas.DataFrame or a "
        f"pyarrow.Table, got {type(batch).__name__}"
    )


def _table_from_pandas(df: Any) -> pa.Table:
    cols = {}
    for name in df.columns:
        series = df[name]
        if (
            series.dtype == object
            and len(series)
            and isinstance(series.iloc[0], np.ndarray)
        ):
            cols[str(name)] = array_from_numpy(list(series))
        else:
            cols[str(name)] = pa.array(series, from_pandas=True)
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))


def _value(col: pa.ChunkedArray, i: int) -> Any:
    if _is_tensor_type(col.type):
        return column_to_numpy(col.slice(i, 1))[0]
    return col[i].as_py()


def iter_rows(table: pa.Table) -> Iterable[dict[str, Any]]:
    """Rows as dicts (python scalars; tensor cells as numpy arrays)."""
    if not any(_is_tensor_type(f.type) for f in table.schema):
        yield from table.to_pylist()
        return
    names = table.column_names
    tensors = {
        n: column_to_numpy(table.column(n))
        for n in names
        if _is_tensor_type(table.column(n).type)
    }
    for i in range(table.num_rows):
        yield {
            n: tensors[n][i] if n in tensors else table.column(n)[i].as_py()
            for n in names
        }


def concat(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t.num_columns or t.num_rows]
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


def split_by_size(table: pa.Table, target_bytes: int | None) -> list[pa.Table]:
    """Slice a block so that no piece is much over ``target_bytes`` (None: never)."""
    if not target_bytes or table.nbytes <= target_bytes or table.num_rows <= 1:
        return [table]
    pieces = -(-table.nbytes // target_bytes)
    step = max(1, -(-table.num_rows // pieces))
    return [table.slice(i, step) for i in range(0, table.num_rows, step)]
