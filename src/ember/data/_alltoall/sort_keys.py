"""Sort keys: normalising ``key``/``descending``, ordering rows, and cutting sorted blocks into ranges.

Rows order as Ray orders them: by each key column in turn, ascending or
descending per column, with nulls (and NaN) last in either direction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

Row = tuple[Any, ...]


@dataclass(frozen=True)
class SortKey:
    """The columns to order by and, per column, whether it orders descending."""

    columns: tuple[str, ...]
    descending: tuple[bool, ...]

    @classmethod
    def of(
        cls, key: str | Sequence[str], descending: bool | Sequence[bool] = False
    ) -> SortKey:
        columns = (key,) if isinstance(key, str) else tuple(key)
        if not columns or not all(isinstance(c, str) for c in columns):
            raise ValueError(
                f"The sort key must be a column name or a list of them, got {key!r}"
            )
        if isinstance(descending, bool):
            flags = (descending,) * len(columns)
        else:
            flags = tuple(bool(d) for d in descending)
            if len(flags) != len(columns):
                raise ValueError(
                    f"Length of `descending` ({len(flags)}) does not match the number of "
                    f"sort keys ({len(columns)})"
                )
        return cls(columns, flags)

    def arrow_keys(self) -> list[tuple[str, str]]:
        return [
            (c, "descending" if d else "ascending")
            for c, d in zip(self.columns, self.descending, strict=True)
        ]

    def sort_table(self, table: pa.Table) -> pa.Table:
        if table.num_rows <= 1:
            return table
        order = pc.sort_indices(table, sort_keys=self.arrow_keys())  # nulls at the end
        return table.take(order)

    def rows(self, table: pa.Table) -> list[Row]:
        """The key values of every row of ``table``, as tuples."""
        cols = [table.column(c).to_pylist() for c in self.columns]
        return list(zip(*cols, strict=True)) if cols else []

    def compare(self, a: Row, b: Row) -> int:
        """-1, 0 or 1 as row key ``a`` sorts before, with or after ``b``."""
        for x, y, desc in zip(a, b, self.descending, strict=True):
            x_missing, y_missing = _missing(x), _missing(y)
            if x_missing or y_missing:
                if x_missing and y_missing:
                    continue
                return 1 if x_missing else -1
            if x == y:
                continue
            less = x < y
            return (1 if less else -1) if desc else (-1 if less else 1)
        return 0

    def boundaries(self, samples: Sequence[Row], num_ranges: int) -> list[Row]:
        """``num_ranges - 1`` cut points taken at even quantiles of the sampled keys."""
        if num_ranges <= 1 or not samples:
            return []
        ordered = sorted(samples, key=cmp_to_key(self.compare))
        cuts = [ordered[(i * len(ordered)) // num_ranges] for i in range(1, num_ranges)]
        # equal cut points would make empty ranges; keep each distinct one once
        out: list[Row] = []
        for cut in cuts:
            if not out or self.compare(out[-1], cut) != 0:
                out.append(cut)
        return out

    def split_sorted(
        self, table: pa.Table, boundaries: Sequence[Row]
    ) -> list[pa.Table]:
        """Cut a table sorted by this key into ``len(boundaries) + 1`` ranges.

        Range ``i`` holds the rows ordering before ``boundaries[i]`` and not before
        ``boundaries[i - 1]``; rows equal to a boundary go to the range it opens,
        so equal keys never straddle two ranges.
        """
        if table.num_rows == 0:
            return [table] * (len(boundaries) + 1)
        cols = [table.column(c).combine_chunks() for c in self.columns]

        def before(i: int, bound: Row) -> bool:
            row = tuple(col[i].as_py() for col in cols)
            return self.compare(row, bound) < 0

        cuts = []
        for bound in boundaries:
            lo, hi = 0, table.num_rows
            while lo < hi:  # first row not before the boundary
                mid = (lo + hi) // 2
                if before(mid, bound):
                    lo = mid + 1
                else:
                    hi = mid
            cuts.append(lo)
        edges = [0, *cuts, table.num_rows]
        return [table.slice(lo, hi - lo) for lo, hi in itertools.pairwise(edges)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def group_starts(table: pa.Table, columns: Sequence[str]) -> list[int]:
    """Offsets where a new group begins in a table sorted by ``columns`` (nulls form one group)."""
    n = table.num_rows
    if n == 0:
        return []
    if not columns:
        return [0]
    changed = None
    for name in columns:
        col = table.column(name)
        prev, cur = col.slice(0, n - 1), col.slice(1)
        differs = pc.fill_null(pc.not_equal(prev, cur), False)
        null_flip = pc.xor(pc.is_null(prev), pc.is_null(cur))
        step = pc.or_(differs, null_flip)
        changed = step if changed is None else pc.or_(changed, step)
    assert changed is not None
    idx = pc.indices_nonzero(changed).to_pylist() if n > 1 else []
    return [0, *(i + 1 for i in idx)]
