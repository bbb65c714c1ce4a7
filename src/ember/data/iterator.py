"""DataIterator: batches and rows out of a stream of blocks, with prefetching in a thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

import ember
from ember.data import block as B
from ember.data._batcher import batch_tables

_DONE = object()


def _prefetched(refs: Iterator[Any], depth: int) -> Iterator[pa.Table]:
    """Fetch blocks in a background thread, keeping up to ``depth`` ahead of the consumer."""
    if depth <= 0:
        for ref in refs:
            yield ember.get(ref)
        return
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for ref in refs:
                if not put(ember.get(ref)):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, raised there)
            put(exc)
        finally:
            close = getattr(refs, "close", None)
            if close is not None:
                close()  # stop the execution (its actors) now, not at garbage collection

    thread = threading.Thread(target=pump, name="ember-data-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


class DataIterator:
    """Iterates a dataset (or one shard of a streaming split) as rows or batches."""

    def __init__(
        self, ref_stream: Callable[[], Iterator[Any]], name: str = "dataset"
    ) -> None:
        self._ref_stream = ref_stream
        self._name = name

    def _tables(self, prefetch: int) -> Iterator[pa.Table]:
        return _prefetched(self._ref_stream(), prefetch)

    def iter_batches(
        self,
        *,
        prefetch_batches: int = 1,
        batch_size: int | None = 256,
        batch_format: str | None = "default",
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
        _collate_fn: Callable[[Any], Any] | None = None,
    ) -> Iterator[Any]:
        fmt = B.check_batch_format(batch_format)
        tables = batch_tables(
            self._tables(prefetch_batches),
            batch_size,
            drop_last,
            local_shuffle_buffer_size,
            local_shuffle_seed,
        )
        for t in tables:
            batch = B.to_batch(t, fmt)
            yield _collate_fn(batch) if _collate_fn is not None else batch

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for t in self._tables(1):
            yield from B.iter_rows(t)

    def iter_torch_batches(
        self,
        *,
        prefetch_batches: int = 1,
        batch_size: int | None = 256,
        dtypes: Any = None,
        device: Any = "auto",
        collate_fn: Callable[[Any], Any] | None = None,
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
    ) -> Iterator[Any]:
        try:
            import torch
        except ImportError as exc:
            raise ImportError(
                "iter_torch_batches needs PyTorch: pip install torch"
            ) from exc
        dev = None if device == "auto" else device
        for batch in self.iter_batches(
            prefetch_batches=prefetch_batches,
            batch_size=batch_size,
            drop_last=drop_last,
            local_shuffle_buffer_size=local_shuffle_buffer_size,
            local_shuffle_seed=local_shuffle_seed,
        ):
            if collate_fn is not None:
                yield collate_fn(batch)
                continue
            out = {}
            for name, arr in batch.items():
                dtype = dtypes.get(name) if isinstance(dtypes, dict) else dtypes
                out[name] = torch.as_tensor(arr, dtype=dtype, device=dev)
            yield out

    def __repr__(self) -> str:
        return f"DataIterator({self._name})"
