"""The all-to-all operations of ember.data over lists of block refs (the contract with Dataset).

Each function takes the output blocks of a materialized dataset
(``list[ObjectRef]``, each ref one ``pyarrow.Table``) and returns the blocks of
the result; rows travel between tasks, never through the driver.
"""

from __future__ import annotations

import ember
from ember.data._alltoall.exchange import (
    random_shuffle as random_shuffle,
    repartition_shuffled,
    sort as sort,
)
from ember.data._alltoall.groupby import (
    aggregate as aggregate,
    aggregate_row as aggregate_row,
)
from ember.data._alltoall.reshape import (
    randomize_block_order as randomize_block_order,
    repartition_ordered,
    union as union,
    unique as unique,
    zip_blocks as zip,
)

__all__ = [
    "aggregate",
    "aggregate_row",
    "randomize_block_order",
    "random_shuffle",
    "repartition",
    "sort",
    "union",
    "unique",
    "zip",
]


def repartition(
    refs: list[ember.ObjectRef], num_blocks: int, *, shuffle: bool = False
) -> list[ember.ObjectRef]:
    """``num_blocks`` blocks: the rows in order (split/merged evenly), or fully shuffled."""
    if (
        not isinstance(num_blocks, int)
        or isinstance(num_blocks, bool)
        or num_blocks < 1
    ):
        raise ValueError(f"num_blocks must be a positive integer, got {num_blocks!r}")
    if shuffle:
        return repartition_shuffled(refs, num_blocks)
    return repartition_ordered(refs, num_blocks)
