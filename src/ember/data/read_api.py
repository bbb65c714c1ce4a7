"""Creating Datasets: range, from_* (driver data) and read_* (files, read lazily by tasks)."""

from __future__ import annotations

import builtins
import functools
import itertools
from typing import Any

import numpy as np
import pyarrow as pa

import ember
from ember.data import block as B
from ember.data._plan import Plan, ReadTask, Source
from ember.data.dataset import Dataset, MaterializedDataset
from ember.data.datasource import file_read_tasks


def _default_blocks(n: int) -> int:
    cpus = int(ember.cluster_resources().get("CPU", 1))
    return max(1, min(n, max(2 * cpus, min(200, n // 100_000))))


def _num_blocks(n: int, override_num_blocks: int | None, parallelism: int) -> int:
    wanted = (
        override_num_blocks
        if override_num_blocks is not None
        else (parallelism if parallelism > 0 else None)
    )
    if wanted is not None and wanted < 1:
        raise ValueError(f"override_num_blocks must be >= 1, got {wanted}")
    return max(1, min(n, wanted)) if wanted is not None else _default_blocks(n)


def _range_block(
    start: int, end: int, column: str, shape: tuple[int, ...] | None
) -> list[pa.Table]:
    ids = np.arange(start, end, dtype=np.int64)
    if shape is None:
        return [pa.table({column: ids})]
    data = np.ones((len(ids), *shape), dtype=np.int64) * ids.reshape(
        (-1,) + (1,) * len(shape)
    )
    return [B.table_from_columns({column: data})]


def _range(
    n: int,
    column: str,
    shape: tuple[int, ...] | None,
    name: str,
    override_num_blocks: int | None,
    parallelism: int,
) -> Dataset:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    k = _num_blocks(max(n, 1), override_num_blocks, parallelism)
    bounds = [n * i // k for i in builtins.range(k + 1)]
    per_row = 8 * int(np.prod(shape)) if shape else 8
    tasks = tuple(
        ReadTask(
            functools.partial(_range_block, a, b, column, shape),
            num_rows=b - a,
            size_bytes=(b - a) * per_row,
        )
        for a, b in itertools.pairwise(bounds)
    )
    return Dataset(Plan(Source(name, read_tasks=tasks)))


def range(
    n: int,
    *,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    **kwargs: Any,
) -> Dataset:
    """Rows ``{"id": i}`` for i in 0..n-1."""
    return _range(n, "id", None, "ReadRange", override_num_blocks, parallelism)


def range_tensor(
    n: int,
    *,
    shape: tuple[int, ...] = (1,),
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    **kwargs: Any,
) -> Dataset:
    """Rows ``{"data": np.full(shape, i)}`` for i in 0..n-1."""
    return _range(
        n, "data", tuple(shape), "ReadRange", override_num_blocks, parallelism
    )


def _from_tables(name: str, tables: list[pa.Table]) -> MaterializedDataset:
    items = [(ember.put(t), B.metadata_of(t)) for t in tables]
    return MaterializedDataset(
        Plan(
            Source(
                name,
                refs=tuple(r for r, _ in items),
                metadata=tuple(m for _, m in items),
            )
        )
    )


def from_items(
    items: list[Any], *, parallelism: int = -1, override_num_blocks: int | None = None
) -> MaterializedDataset:
    """A dataset of Python objects: dict items are rows, others become ``{"item": x}``."""
    if not isinstance(items, list):
        raise TypeError(f"Argument `items` must be a list, got {type(items)}.")
    rows = [it if isinstance(it, dict) else {"item": it} for it in items]
    k = _num_blocks(max(len(rows), 1), override_num_blocks, parallelism)
    bounds = [len(rows) * i // k for i in builtins.range(k + 1)]
    tables = [
        B.table_from_rows(rows[a:b]) for a, b in itertools.pairwise(bounds) if b > a
    ]
    return _from_tables("FromItems", tables or [pa.table({})])


def from_numpy(ndarrays: Any) -> MaterializedDataset:
    arrays = ndarrays if isinstance(ndarrays, list) else [ndarrays]
    return _from_tables(
        "FromNumpy", [B.table_from_columns({"data": np.asarray(a)}) for a in arrays]
    )


def from_pandas(
    dfs: Any, override_num_blocks: int | None = None
) -> MaterializedDataset:
    frames = dfs if isinstance(dfs, list) else [dfs]
    return _from_tables("FromPandas", [B.from_batch(df) for df in frames])


def from_arrow(
    tables: Any, *, override_num_blocks: int | None = None
) -> MaterializedDataset:
    items = tables if isinstance(tables, list) else [tables]
    return _from_tables(
        "FromArrow",
        [t if isinstance(t, pa.Table) else pa.Table.from_batches([t]) for t in items],
    )


def from_blocks(blocks: list[Any]) -> MaterializedDataset:
    """A dataset of blocks (pyarrow Tables or pandas DataFrames) held in the driver."""
    return _from_tables("FromBlocks", [B.from_batch(b) for b in blocks])


def _from_refs(name: str, refs: Any) -> MaterializedDataset:
    refs = list(refs) if isinstance(refs, list) else [refs]
    pairs = [_to_table.remote(r) for r in refs]
    metas = ember.get([m for _, m in pairs])
    return MaterializedDataset(
        Plan(Source(name, refs=tuple(b for b, _ in pairs), metadata=tuple(metas)))
    )


@ember.remote(num_returns=2)
def _to_table(value: Any) -> tuple[Any, Any]:
    if isinstance(value, np.ndarray):
        table = B.table_from_columns({"data": value})
    else:
        table = B.from_batch(value)
    return table, B.metadata_of(table)


def from_arrow_refs(tables: Any) -> MaterializedDataset:
    return _from_refs("FromArrow", tables)


def from_pandas_refs(dfs: Any) -> MaterializedDataset:
    return _from_refs("FromPandas", dfs)


def from_numpy_refs(ndarrays: Any) -> MaterializedDataset:
    return _from_refs("FromNumpy", ndarrays)


def _read(
    name: str,
    fmt: str,
    paths: Any,
    filesystem: Any,
    override_num_blocks: int | None,
    parallelism: int,
    options: dict[str, Any],
    extensions: list[str] | None = None,
) -> Dataset:
    wanted = (
        override_num_blocks
        if override_num_blocks is not None
        else (parallelism if parallelism > 0 else None)
    )
    tasks, files = file_read_tasks(fmt, paths, filesystem, wanted, options, extensions)
    return Dataset(Plan(Source(name, read_tasks=tuple(tasks), files=tuple(files))))


def read_parquet(
    paths: Any,
    *,
    filesystem: Any = None,
    columns: list[str] | None = None,
    filter: Any = None,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    file_extensions: list[str] | None = None,
    **kwargs: Any,
) -> Dataset:
    """Parquet files; ``columns`` and ``filter`` (a pyarrow.dataset expression) are pushed into the read."""
    return _read(
        "ReadParquet",
        "parquet",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {
            "columns": columns,
            "filter": filter,
            "include_paths": kwargs.get("include_paths", False),
        },
        file_extensions or ["parquet"],
    )


def read_csv(
    paths: Any,
    *,
    filesystem: Any = None,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    include_paths: bool = False,
    file_extensions: list[str] | None = None,
    **arrow_csv_args: Any,
) -> Dataset:
    return _read(
        "ReadCSV",
        "csv",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {"include_paths": include_paths},
        file_extensions,
    )


def read_json(
    paths: Any,
    *,
    filesystem: Any = None,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    include_paths: bool = False,
    file_extensions: list[str] | None = None,
    **kwargs: Any,
) -> Dataset:
    """JSON-lines files (a file holding one JSON array is read too)."""
    return _read(
        "ReadJSON",
        "json",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {"include_paths": include_paths},
        file_extensions,
    )


def read_text(
    paths: Any,
    *,
    encoding: str = "utf-8",
    drop_empty_lines: bool = True,
    filesystem: Any = None,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    include_paths: bool = False,
    file_extensions: list[str] | None = None,
    **kwargs: Any,
) -> Dataset:
    """One row ``{"text": line}`` per line."""
    return _read(
        "ReadText",
        "text",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {
            "encoding": encoding,
            "drop_empty_lines": drop_empty_lines,
            "include_paths": include_paths,
        },
        file_extensions,
    )


def read_binary_files(
    paths: Any,
    *,
    include_paths: bool = False,
    filesystem: Any = None,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    file_extensions: list[str] | None = None,
    **kwargs: Any,
) -> Dataset:
    """One row ``{"bytes": contents}`` per file."""
    return _read(
        "ReadBinary",
        "binary",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {"include_paths": include_paths},
        file_extensions,
    )


def read_numpy(
    paths: Any,
    *,
    filesystem: Any = None,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    file_extensions: list[str] | None = None,
    **kwargs: Any,
) -> Dataset:
    """``.npy`` files, one row ``{"data": a[i]}`` per leading index."""
    return _read(
        "ReadNumpy",
        "numpy",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {},
        file_extensions or ["npy"],
    )


def read_images(
    paths: Any,
    *,
    filesystem: Any = None,
    size: tuple[int, int] | None = None,
    mode: str | None = None,
    include_paths: bool = False,
    parallelism: int = -1,
    override_num_blocks: int | None = None,
    file_extensions: list[str] | None = None,
    **kwargs: Any,
) -> Dataset:
    """Image files as rows ``{"image": array}`` (needs Pillow)."""
    try:
        import PIL  # noqa: F401
    except ImportError as exc:
        raise ImportError("read_images needs Pillow: pip install Pillow") from exc
    exts = file_extensions or ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif"]
    return _read(
        "ReadImage",
        "images",
        paths,
        filesystem,
        override_num_blocks,
        parallelism,
        {"size": size, "mode": mode, "include_paths": include_paths},
        exts,
    )
