"""Pure row scatter of the exchanges: by random draw, by key hash, by key range.

Each function cuts one block into ``n`` parts (a list of ``pyarrow.Table``,
part ``i`` for reducer ``i``); the map tasks in ``tasks.py`` call them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_FNV_PRIME = np.uint64(0x100000001B3)


def scatter(table: pa.Table, assignment: np.ndarray, n: int) -> list[pa.Table]:
    """Split ``table`` into ``n`` parts, row ``i`` going to part ``assignment[i]`` (order kept)."""
    if n == 1:
        return [table]
    order = np.argsort(assignment, kind="stable")
    counts = np.bincount(assignment, minlength=n)
    grouped = table.take(pa.array(order)) if table.num_rows else table
    edges = np.concatenate([[0], np.cumsum(counts)])
    return [grouped.slice(int(edges[i]), int(counts[i])) for i in range(n)]


def random_parts(table: pa.Table, n: int, rng: np.random.Generator) -> list[pa.Table]:
    """Send each row to a part drawn uniformly at random."""
    return scatter(table, rng.integers(0, n, table.num_rows), n)


def key_hash(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit hash per row of the key columns, equal for equal keys in any block or process.

    Numbers hash by their float64 value (so an int key hashes alike in a block with
    nulls and one without), strings by pandas' stable SipHash; collisions only put
    two keys in one partition, which is harmless.
    """
    out = np.zeros(table.num_rows, dtype=np.uint64)
    for name in columns:
        col = table.column(name)
        kind = col.type
        if (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
        ):
            values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False) + 0.0
        elif pa.types.is_temporal(kind):
            values = pc.cast(pc.cast(col, pa.int64()), pa.float64()).to_numpy(
                zero_copy_only=False
            )
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values = col.to_numpy(zero_copy_only=False).astype(object)
        else:
            values = np.array([repr(v) for v in col.to_pylist()], dtype=object)
        hashed = pd.util.hash_array(values)
        with np.errstate(over="ignore"):
            out = (out ^ hashed) * _FNV_PRIME
    return out


def hash_parts(table: pa.Table, columns: Sequence[str], n: int) -> list[pa.Table]:
    """Send each row to the part its key hashes to."""
    if n == 1 or table.num_rows == 0:
        return [table] + [table.slice(0, 0)] * (n - 1)
    return scatter(table, (key_hash(table, columns) % np.uint64(n)).astype(np.int64), n)
