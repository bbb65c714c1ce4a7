"""Order-keeping all-to-all operations: repartition without shuffle, block order, union, zip, unique.

Only row counts and unique values come back to the driver; blocks move from
task to task.
"""

from __future__ import annotations

import random
from typing import Any

import ember
from ember.data._alltoall import blocks as B, tasks as T


def row_counts(refs: list[ember.ObjectRef]) -> list[int]:
    """The number of rows of each block (one small task per block)."""
    return list(ember.get([T.row_count.remote(r) for r in refs])) if refs else []


def split_by_plan(
    refs: list[ember.ObjectRef], plan: list[list[B.Piece]]
) -> list[ember.ObjectRef]:
    """One task per output block, given only the input blocks its pieces come from."""
    out = []
    for pieces in plan:
        if not pieces and refs:
            # an empty block that keeps the schema of the first one
            pieces = [(0, 0, 0)]
        used = sorted({i for i, _, _ in pieces})
        local = {i: j for j, i in enumerate(used)}
        renumbered = [(local[i], start, n) for i, start, n in pieces]
        out.append(T.take_pieces.remote(renumbered, *[refs[i] for i in used]))
    return out


def repartition_ordered(
    refs: list[ember.ObjectRef], num_blocks: int
) -> list[ember.ObjectRef]:
    """``num_blocks`` blocks of the same rows in the same order, sizes differing by one row at most."""
    counts = row_counts(refs)
    bounds = B.even_bounds(sum(counts), num_blocks)
    return split_by_plan(refs, B.slice_plan(counts, bounds))


def randomize_block_order(
    refs: list[ember.ObjectRef], *, seed: int | None
) -> list[ember.ObjectRef]:
    """The same blocks in a random order (the rows of a block stay together)."""
    out = list(refs)
    random.Random(seed).shuffle(out)
    return out


def union(inputs: list[list[ember.ObjectRef]]) -> list[ember.ObjectRef]:
    """The blocks of every input, one input after the other."""
    return [ref for refs in inputs for ref in refs]


def zip_blocks(
    left: list[ember.ObjectRef], right: list[ember.ObjectRef]
) -> list[ember.ObjectRef]:
    """Row-aligned column merge: output block ``i`` holds left block ``i`` beside the matching right rows."""
    left_counts, right_counts = row_counts(left), row_counts(right)
    if sum(left_counts) != sum(right_counts):
        raise ValueError(
            "Cannot zip datasets of different number of rows: "
            f"{sum(left_counts)}, {sum(right_counts)}"
        )
    bounds = [0]
    for n in left_counts:
        bounds.append(bounds[-1] + n)
    out = []
    for ref, pieces in zip(left, B.slice_plan(right_counts, bounds), strict=True):
        used = sorted({i for i, _, _ in pieces})
        local = {i: j for j, i in enumerate(used)}
        renumbered = [(local[i], start, n) for i, start, n in pieces]
        out.append(T.zip_block.remote(ref, renumbered, *[right[i] for i in used]))
    return out


def unique(
    refs: list[ember.ObjectRef], column: str, *, ignore_nulls: bool = False
) -> list[Any]:
    """The distinct values of ``column``, in order of first appearance."""
    seen: dict[Any, None] = {}
    has_null = False
    for values in (
        ember.get([T.unique_values.remote(r, column) for r in refs]) if refs else []
    ):
        for v in values:
            if v is None:
                if not has_null:
                    has_null = True
                    seen[_NULL] = None
                continue
            if isinstance(v, float) and v != v:
                seen.setdefault(_NAN, None)
                continue
            try:
                seen.setdefault(v, None)
            except TypeError:  # unhashable values (lists, dicts): keep by repr
                seen.setdefault(_Unhashable(v), None)
    out: list[Any] = []
    for v in seen:
        if v is _NULL:
            if not ignore_nulls:
                out.append(None)
        elif v is _NAN:
            out.append(float("nan"))
        else:
            out.append(v.value if isinstance(v, _Unhashable) else v)
    return out


_NULL = object()
_NAN = object()


class _Unhashable:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return hash(repr(self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unhashable) and self.value == other.value
