"""The remote side of execution: the stage task, the map actor and small block helpers."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

import ember
from ember.data import block as B
from ember.data._plan import MapSpec, ReadTask
from ember.data._transforms import make_callable, run_ops


def _run(
    ops: list[MapSpec], fns: list[Any], tables: list[pa.Table]
) -> tuple[pa.Table, B.BlockMetadata]:
    start = time.perf_counter()
    out = run_ops(ops, fns, iter(tables))
    return out, B.metadata_of(out, time.perf_counter() - start)


def run_stage_task(
    ops: list[MapSpec], read: ReadTask | None, block: pa.Table | None
) -> tuple[pa.Table, B.BlockMetadata]:
    """One task of a task stage: read (or take the input block), then apply the fused ops."""
    start = time.perf_counter()
    tables = list(read.read()) if read is not None else [block]
    fns = [make_callable(op) for op in ops]
    out = run_ops(ops, fns, iter(t for t in tables if t is not None))
    return out, B.metadata_of(out, time.perf_counter() - start)


stage_task = ember.remote(num_returns=2)(run_stage_task)


class MapWorker:
    """An actor of an actor-pool stage: builds the user's callable class once."""

    def __init__(self, ops: list[MapSpec]) -> None:
        self._ops = ops
        self._fns = [make_callable(op) for op in ops]

    @ember.method(num_returns=2)
    def process(self, block: pa.Table) -> tuple[pa.Table, B.BlockMetadata]:
        return _run(self._ops, self._fns, [block])

    def ready(self) -> bool:
        return True


@ember.remote(num_returns=2)
def slice_block(
    block: pa.Table, offset: int, length: int
) -> tuple[pa.Table, B.BlockMetadata]:
    out = block.slice(offset, length)
    return out, B.metadata_of(out)


@ember.remote
def block_metadata(block: pa.Table) -> B.BlockMetadata:
    return B.metadata_of(block)


def put_block(table: pa.Table) -> tuple[Any, B.BlockMetadata]:
    return ember.put(table), B.metadata_of(table)
