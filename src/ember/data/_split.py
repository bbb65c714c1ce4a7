"""Splitting a Dataset: split (materialized shards), streaming_split (shared pipeline), train_test_split."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import ember
from ember.data._plan import Plan, Source
from ember.data._workers import slice_block
from ember.data.block import BlockMetadata
from ember.data.iterator import DataIterator


def _even_sizes(total: int, n: int, equal: bool) -> list[int]:
    if equal:
        return [total // n] * n
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def split_rows(
    items: list[tuple[Any, BlockMetadata]], sizes: list[int]
) -> list[list[tuple[Any, BlockMetadata]]]:
    """Cut an ordered list of blocks into consecutive pieces of ``sizes`` rows (slicing blocks)."""
    out: list[list[tuple[Any, BlockMetadata]]] = []
    blocks = list(items)
    pos = 0  # rows of blocks[0] already used
    for size in sizes:
        piece: list[tuple[Any, BlockMetadata]] = []
        need = size
        while need > 0 and blocks:
            ref, meta = blocks[0]
            avail = meta.num_rows - pos
            take = min(avail, need)
            if pos == 0 and take == meta.num_rows:
                piece.append((ref, meta))
            else:
                new_ref, meta_ref = slice_block.remote(ref, pos, take)
                piece.append((new_ref, ember.get(meta_ref)))
            need -= take
            pos += take
            if pos >= meta.num_rows:
                blocks.pop(0)
                pos = 0
        out.append(piece)
    return out


def _materialized(
    make: Callable[..., Any], name: str, items: list[tuple[Any, BlockMetadata]]
) -> Any:
    return make(
        Plan(
            Source(
                name,
                refs=tuple(r for r, _ in items),
                metadata=tuple(m for _, m in items),
            )
        ),
        materialized=True,
    )


class SplitMixin:
    _plan: Plan
    _make: Callable[..., Any]

    def _items(self) -> list[tuple[Any, BlockMetadata]]:
        return list(self._execute())  # type: ignore[attr-defined]

    def split(
        self, n: int, *, equal: bool = False, locality_hints: list[Any] | None = None
    ) -> list[Any]:
        """``n`` materialized shards covering the dataset (``equal``: same row count, extra rows dropped)."""
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"The number of splits {n} is not positive.")
        if locality_hints is not None and len(locality_hints) != n:
            raise ValueError(
                f"The length of locality_hints {len(locality_hints)} doesn't equal the number of splits {n}."
            )
        items = [it for it in self._items() if it[1].num_rows]
        total = sum(m.num_rows for _, m in items)
        return [
            _materialized(self._make, "Split", piece)
            for piece in split_rows(items, _even_sizes(total, n, equal))
        ]

    def split_at_indices(self, indices: list[int]) -> list[Any]:
        if not indices:
            raise ValueError("indices must be at least of length 1")
        if sorted(indices) != list(indices) or indices[0] < 0:
            raise ValueError("indices must be sorted and non-negative")
        items = [it for it in self._items() if it[1].num_rows]
        total = sum(m.num_rows for _, m in items)
        bounds = [min(i, total) for i in indices]
        sizes = [b - a for a, b in zip([0, *bounds], [*bounds, total], strict=True)]
        return [
            _materialized(self._make, "Split", piece)
            for piece in split_rows(items, sizes)
        ]

    def train_test_split(
        self,
        test_size: int | float,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        stratify: str | None = None,
    ) -> tuple[Any, Any]:
        if stratify is not None:
            raise NotImplementedError(
                "train_test_split(stratify=...) is not supported by ember"
            )
        ds: Any = self.random_shuffle(seed=seed) if shuffle else self  # type: ignore[attr-defined]
        if isinstance(test_size, float):
            if not 0 < test_size < 1:
                raise ValueError(
                    f"If `test_size` is a float, it must be between 0 and 1, got {test_size}"
                )
            total = ds.count()
            train = int(total * (1 - test_size))
        else:
            if not isinstance(test_size, int) or test_size <= 0:
                raise ValueError(
                    f"`test_size` must be a positive int or a float, got {test_size!r}"
                )
            total = ds.count()
            if test_size > total:
                raise ValueError(
                    f"test_size {test_size} is larger than the dataset's {total} rows"
                )
            train = total - test_size
        a, b = ds.split_at_indices([train])
        return a, b

    def streaming_split(
        self, n: int, *, equal: bool = False, locality_hints: list[Any] | None = None
    ) -> list[DataIterator]:
        """``n`` iterators that share one streaming execution (e.g. one per Train worker).

        A coordinator actor runs the pipeline and hands each block to whichever consumer
        asks next; with ``equal=True`` it materializes first and gives every consumer the
        same number of rows. All consumers must iterate each epoch.
        """
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"The number of splits {n} is not positive.")
        coordinator = (
            ember.remote(_SplitCoordinator)
            .options(num_cpus=0, max_concurrency=n + 1)
            .remote(self, n, equal)
        )
        return [
            DataIterator(_SplitStream(coordinator, i), f"streaming_split {i}/{n}")
            for i in range(n)
        ]


class _SplitCoordinator:
    """An actor (threaded, one thread per consumer): one execution per epoch, its blocks
    handed out to the n consumers. A consumer asking for the next epoch waits until every
    consumer has finished the current one, as Ray's streaming_split does."""

    def __init__(self, dataset: Any, n: int, equal: bool) -> None:
        self._dataset = dataset
        self._n = n
        self._equal = equal
        self._epoch = -1
        self._finished: set[int] = set()
        self._cond = threading.Condition()
        self._stream: Iterator[Any] | None = None
        self._queues: list[list[Any]] | None = None

    def _start(self, epoch: int) -> None:
        self._epoch = epoch
        self._finished = set()
        if self._equal:
            items = [it for it in self._dataset._execute() if it[1].num_rows]
            total = sum(m.num_rows for _, m in items)
            pieces = split_rows(items, _even_sizes(total, self._n, True))
            self._queues = [[r for r, _ in p] for p in pieces]
            self._stream = None
        else:
            self._stream = iter(self._dataset._execute())

    def _next(self, split: int) -> list[Any] | None:
        if self._queues is not None:
            queue = self._queues[split]
            return [queue.pop(0)] if queue else None
        assert self._stream is not None
        for ref, _ in self._stream:
            return [ref]
        return None

    def next_block(self, split: int, epoch: int) -> list[Any] | None:
        with self._cond:
            if epoch > self._epoch:
                self._cond.wait_for(
                    lambda: (
                        self._epoch < 0
                        or len(self._finished) >= self._n
                        or epoch <= self._epoch
                    )
                )
                if epoch > self._epoch:
                    self._start(epoch)
            if epoch < self._epoch or split in self._finished:
                return None
            got = self._next(split)
            if got is None:
                self._finished.add(split)
                self._cond.notify_all()
            return got


class _SplitStream:
    """The picklable source of one consumer's blocks (epoch counted per consumer)."""

    def __init__(self, coordinator: Any, index: int) -> None:
        self._coordinator = coordinator
        self._index = index
        self._epoch = -1

    def __call__(self) -> Iterator[Any]:
        self._epoch += 1
        while True:
            got = ember.get(
                self._coordinator.next_block.remote(self._index, self._epoch)
            )
            if got is None:
                return
            yield got[0]
