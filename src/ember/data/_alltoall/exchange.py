"""The two map/reduce exchanges: the distributed sample sort and the random shuffle.

Both are push-based in the sense that rows never pass through the driver: map
tasks cut each block into one part per reducer (``num_returns``), reduce tasks
take their part of every map output as arguments.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any

import ember
from ember.data._alltoall import tasks as T
from ember.data._alltoall.sort_keys import SortKey

SAMPLES_PER_BLOCK = 20


def exchange(
    map_outputs: list[list[ember.ObjectRef]],
    reduce_task: Any,
    head_args: Callable[[int], tuple[Any, ...]],
) -> list[ember.ObjectRef]:
    """Reducer ``i`` gets part ``i`` of every map output, after ``head_args`` (plus its index)."""
    if not map_outputs:
        return []
    n = len(map_outputs[0])
    return [
        reduce_task.remote(*head_args(i), *[parts[i] for parts in map_outputs])
        for i in range(n)
    ]


def sort(
    refs: list[ember.ObjectRef],
    key: str | list[str],
    descending: bool | list[bool] = False,
) -> list[ember.ObjectRef]:
    """Sample sort: sample keys, cut at even quantiles, range-partition every block, sort each range."""
    sort_key = SortKey.of(key, descending)
    if not refs:
        return []
    samples = [
        row
        for rows in ember.get(
            [T.sample_keys.remote(r, sort_key, SAMPLES_PER_BLOCK) for r in refs]
        )
        for row in rows
    ]
    boundaries = sort_key.boundaries(samples, len(refs))
    n = len(boundaries) + 1
    mapped = [T.fanout(T.range_map, n, r, sort_key, boundaries) for r in refs]
    return exchange(mapped, T.range_reduce, lambda i: (sort_key,))


def random_shuffle(
    refs: list[ember.ObjectRef],
    *,
    seed: int | None = None,
    num_blocks: int | None = None,
) -> list[ember.ObjectRef]:
    """Every row to a random one of ``num_blocks`` reducers, which shuffle what they get."""
    if not refs:
        return []
    n = len(refs) if num_blocks is None else num_blocks
    if n < 1:
        raise ValueError(f"num_blocks must be a positive integer, got {num_blocks}")
    base = secrets.randbits(63) if seed is None else int(seed)
    mapped = [T.fanout(T.random_map, n, r, n, base, i) for i, r in enumerate(refs)]
    return exchange(mapped, T.random_reduce, lambda i: (base, i))


def repartition_shuffled(
    refs: Sequence[ember.ObjectRef], num_blocks: int
) -> list[ember.ObjectRef]:
    """``repartition(shuffle=True)``: a full random shuffle into ``num_blocks`` blocks."""
    return random_shuffle(list(refs), seed=None, num_blocks=num_blocks)
