"""Re-batching a stream of blocks: fixed batch sizes, drop_last, a local shuffle buffer (pure)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from ember.data import block as B


def batch_tables(
    tables: Iterator[pa.Table],
    batch_size: int | None,
    drop_last: bool = False,
    shuffle_buffer_size: int | None = None,
    shuffle_seed: int | None = None,
) -> Iterator[pa.Table]:
    """Yield tables of exactly ``batch_size`` rows (the last may be short unless drop_last).

    With a shuffle buffer, rows are gathered until the buffer holds at least
    ``shuffle_buffer_size`` rows, then each batch is drawn at random from it.
    ``batch_size=None`` yields each block as one batch.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer or None, got {batch_size}"
        )
    if shuffle_buffer_size is not None:
        if shuffle_buffer_size < 1:
            raise ValueError(
                f"local_shuffle_buffer_size must be positive, got {shuffle_buffer_size}"
            )
        yield from _shuffled(
            tables, batch_size, drop_last, shuffle_buffer_size, shuffle_seed
        )
        return
    if batch_size is None:
        for t in tables:
            if t.num_rows:
                yield t
        return
    pending: list[pa.Table] = []
    rows = 0
    for t in tables:
        if not t.num_rows:
            continue
        pending.append(t)
        rows += t.num_rows
        while rows >= batch_size:
            buf = B.concat(pending)
            yield buf.slice(0, batch_size)
            rest = buf.slice(batch_size)
            pending, rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if rows and not drop_last:
        yield B.concat(pending)


def _shuffled(
    tables: Iterator[pa.Table],
    batch_size: int | None,
    drop_last: bool,
    buffer_size: int,
    seed: int | None,
) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed)
    size = batch_size or buffer_size
    buf: pa.Table | None = None

    def draw(table: pa.Table, n: int) -> tuple[pa.Table, pa.Table]:
        perm = rng.permutation(table.num_rows)
        return table.take(pa.array(perm[:n])), table.take(pa.array(perm[n:]))

    for t in tables:
        if not t.num_rows:
            continue
        buf = t if buf is None else B.concat([buf, t])
        while buf.num_rows >= max(buffer_size, size):
            out, buf = draw(buf, size)
            yield out
    while buf is not None and buf.num_rows:
        if buf.num_rows < size and drop_last:
            return
        out, buf = draw(buf, min(size, buf.num_rows))
        yield out
