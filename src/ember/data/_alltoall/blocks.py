"""Pure Arrow helpers of the all-to-all operations: slicing plans, zip, key checks.

Nothing here touches the cluster: every function takes and returns
``pyarrow.Table``s or plain Python values, so the unit tests run them directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

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
