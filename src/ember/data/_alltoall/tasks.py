"""The remote tasks of the all-to-all operations (map and reduce sides), and fan-out helpers.

Every task takes blocks as top-level arguments (so ember resolves them on the
worker, never on the driver) and returns blocks or small metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import ember
from ember.data._alltoall import blocks as B
from ember.data._alltoall.sort_keys import Row, SortKey


def fanout(task: Any, n: int, *args: Any) -> list[ember.ObjectRef]:
    """Submit a map task whose ``n`` parts come back as ``n`` separate objects."""
    refs = task.options(num_returns=n).remote(*args)
    return [refs] if n == 1 else list(refs)


def _parts(parts: list[pa.Table]) -> Any:
    return parts[0] if len(parts) == 1 else tuple(parts)


@ember.remote
def row_count(block: pa.Table) -> int:
    return int(block.num_rows)


@ember.remote
def take_pieces(pieces: list[B.Piece], *blocks: pa.Table) -> pa.Table:
    return B.take_pieces(pieces, blocks)


@ember.remote
def zip_block(left: pa.Table, pieces: list[B.Piece], *right: pa.Table) -> pa.Table:
    return B.zip_tables(left, B.take_pieces(pieces, right))


@ember.remote
def unique_values(block: pa.Table, column: str) -> list[Any]:
    B.check_columns(block, [column])
    if block.num_rows == 0:
        return []
    return list(pc.unique(block.column(column)).to_pylist())


@ember.remote
def sample_keys(block: pa.Table, key: SortKey, count: int) -> list[Row]:
    B.check_columns(block, key.columns)
    if block.num_rows == 0:
        return []
    rng = np.random.default_rng(block.num_rows)
    picks = rng.choice(block.num_rows, size=min(count, block.num_rows), replace=False)
    return key.rows(block.take(pa.array(np.sort(picks))))


@ember.remote
def range_map(block: pa.Table, key: SortKey, boundaries: list[Row]) -> Any:
    B.check_columns(block, key.columns)
    return _parts(key.split_sorted(key.sort_table(block), boundaries))


@ember.remote
def range_reduce(key: SortKey, *parts: pa.Table) -> pa.Table:
    return key.sort_table(B.concat(parts))


@ember.remote
def random_map(block: pa.Table, n: int, seed: int, index: int) -> Any:
    return _parts(B.random_parts(block, n, np.random.default_rng([seed, index])))


@ember.remote
def random_reduce(seed: int, index: int, *parts: pa.Table) -> pa.Table:
    table = B.concat(parts)
    rng = np.random.default_rng([seed, index, 1])
    return (
        table.take(pa.array(rng.permutation(table.num_rows)))
        if table.num_rows
        else table
    )


@ember.remote
def hash_map(block: pa.Table, columns: Sequence[str], n: int) -> Any:
    B.check_columns(block, columns)
    return _parts(B.hash_parts(block, columns, n))
