"""Pure Arrow helpers of the all-to-all operations: slicing plans, zip, key checks, row scatter.

Nothing here touches the cluster: every function takes and returns
``pyarrow.Table``s or plain Python values, so the unit tests run them directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# (input block index, first row, number of rows) of one piece of an output block
Piece = tuple[int, int, int]


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """One table of ``tables`` in order; differing column types are promoted to a common one."""
    nonempty = [t for t in tables if t.num_columns > 0]
    if not nonempty:
        return pa.table({})
    if len(nonempty) == 1:
        return nonempty[0]
    try:
        return pa.concat_tables(nonempty, promote_options="default")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # e.g. an int column one part has and a float one (pandas' nulls) another
        return pa.concat_tables(nonempty, promote_options="permissive")


def even_bounds(total_rows: int, num_blocks: int) -> list[int]:
    """Row offsets that cut ``total_rows`` into ``num_blocks`` blocks differing by at most one row.

    Block ``i`` holds rows ``[bounds[i], bounds[i + 1])``; the cuts sit at
    ``floor(i * total / num_blocks)``, as Ray's non-shuffling repartition cuts.
    """
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be a positive integer, got {num_blocks}")
    return [(i * total_rows) // num_blocks for i in range(num_blocks + 1)]


def slice_plan(row_counts: Sequence[int], bounds: Sequence[int]) -> list[list[Piece]]:
    """For each output range ``[bounds[i], bounds[i+1])``, the pieces of input blocks it takes.

    ``row_counts`` are the input blocks' row counts, in order. The plan keeps the
    global row order: concatenating the pieces of every output block in turn gives
    the input rows in order.
    """
    starts = np.concatenate([[0], np.cumsum(np.asarray(row_counts, dtype=np.int64))])
    plan: list[list[Piece]] = []
    for lo, hi in itertools.pairwise(bounds):
        pieces: list[Piece] = []
        if hi > lo:
            first = int(np.searchsorted(starts, lo, side="right")) - 1
            block = first
            while block < len(row_counts) and starts[block] < hi:
                b_lo = max(lo, int(starts[block]))
                b_hi = min(hi, int(starts[block + 1]))
                if b_hi > b_lo:
                    pieces.append((block, b_lo - int(starts[block]), b_hi - b_lo))
                block += 1
        plan.append(pieces)
    return plan


def take_pieces(pieces: Sequence[Piece], blocks: Sequence[pa.Table]) -> pa.Table:
    """Concatenate the pieces of ``blocks`` named by a plan entry (indices into ``blocks``)."""
    return concat([blocks[i].slice(start, length) for i, start, length in pieces])


def zip_tables(left: pa.Table, right: pa.Table) -> pa.Table:
    """``right``'s columns appended to ``left``'s; a taken name gets the first free ``_1``, ``_2``... suffix."""
    if left.num_rows != right.num_rows:
        raise ValueError(
            f"Cannot zip blocks of different number of rows: {left.num_rows}, {right.num_rows}"
        )
    out = left
    for name in right.column_names:
        new_name, i = name, 1
        while new_name in out.column_names:
            new_name = f"{name}_{i}"
            i += 1
        out = out.append_column(new_name, right.column(name))
    return out


def check_columns(table: pa.Table, columns: Sequence[str]) -> None:
    """Raise ValueError naming the first of ``columns`` the table lacks (Ray's wording)."""
    if table.num_columns == 0 and table.num_rows == 0:
        return  # an empty block without a schema has every column
    for name in columns:
        if name not in table.column_names:
            raise ValueError(
                f"You specified the column '{name}', but there's no such column in the "
                f"dataset. The dataset has columns: {table.column_names}"
            )


# row scatter of the exchanges: part i of a block goes to reducer i
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
