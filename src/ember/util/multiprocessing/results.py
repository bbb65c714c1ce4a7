"""Result objects handed out by :class:`ember.util.multiprocessing.Pool`.

Every task the pool sends to a worker actor runs a *chunk*: a list of calls.
The actor returns one list entry per call, with exceptions caught and wrapped
in :class:`TaskFailure` so one failing call does not hide its neighbours.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import TimeoutError
from typing import Any

import ember

__all__ = ["AsyncResult", "IMapIterator", "TaskFailure"]


class TaskFailure:
    """Marks a call that raised; carries the exception back to the driver."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _fetch_chunk(ref: Any) -> list[Any]:
    """Return a chunk's results, turning a failed fetch into a failure entry."""
    try:
        return ember.get(ref)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the waiter
        return [TaskFailure(exc)]


class AsyncResult:
    """The pending result of ``apply_async``, ``map_async`` or ``starmap_async``.

    A daemon thread collects the chunks as they finish and runs the callbacks,
    so callbacks fire even if nobody calls :meth:`get`. Not built by users.

    Args:
        chunk_refs: One ObjectRef per submitted chunk, in input order.
        callback: Called once with the result if every call succeeded.
        error_callback: Called once with the first exception seen otherwise.
        single_result: The result is the only value, not a list (``apply``).
    """

    def __init__(
        self,
        chunk_refs: list[Any],
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        single_result: bool = False,
    ) -> None:
        self._chunks: list[list[Any] | None] = [None] * len(chunk_refs)
        self._single_result = single_result
        self._callback = callback
        self._error_callback = error_callback
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._collect, args=(list(chunk_refs),), daemon=True
        )
        self._thread.start()

    def _collect(self, refs: list[Any]) -> None:
        try:
            position = {ref: i for i, ref in enumerate(refs)}
            pending = refs
            while pending:
                ready, pending = ember.wait(pending, num_returns=1)
                for ref in ready:
                    chunk = _fetch_chunk(ref)
                    self._chunks[position[ref]] = chunk
                    self._note_errors(chunk)
            if self._error is None and self._callback is not None:
                self._callback(self._values())
        finally:
            self._done.set()

    def _note_errors(self, chunk: list[Any]) -> None:
        if self._error is not None:
            return
        for item in chunk:
            if isinstance(item, TaskFailure):
                self._error = item.error
                if self._error_callback is not None:
                    self._error_callback(item.error)
                return

    def _values(self) -> Any:
        values = [item for chunk in self._chunks for item in chunk or ()]
        return values[0] if self._single_result else values

    def wait(self, timeout: float | None = None) -> None:
        """Block until the result is ready or ``timeout`` seconds pass.

        Args:
            timeout: Seconds to wait; ``None`` waits forever.
        """
        self._done.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        """Return the result, waiting for it if needed.

        Args:
            timeout: Seconds to wait; ``None`` waits forever.

        Returns:
            The call's value (``apply_async``) or the list of values.

        Raises:
            multiprocessing.TimeoutError: If the result is not ready in time.
            Exception: The first exception raised by a call, in input order.
        """
        if not self._done.wait(timeout):
            raise TimeoutError
        for chunk in self._chunks:
            for item in chunk or ():
                if isinstance(item, TaskFailure):
                    raise item.error
        return self._values()

    def ready(self) -> bool:
        """Return whether every call has finished."""
        return self._done.is_set()

    def successful(self) -> bool:
        """Return whether every call finished without raising.

        Raises:
            ValueError: If the result is not ready yet.
        """
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None


class IMapIterator(Iterator[Any]):
    """Iterator returned by ``imap`` and ``imap_unordered``. Not built by users.

    Input is read lazily: one chunk per worker is in flight at first, and a new
    chunk is submitted each time one finishes, so the input may be unbounded.

    Args:
        submit: ``submit(chunk, chunk_index)`` starts a chunk and returns its
            ObjectRef.
        inputs: The remaining inputs, each a ready-made call argument tuple.
        chunksize: Calls per chunk.
        window: How many chunks to keep in flight.
        ordered: Yield in input order (``imap``) rather than completion order.
    """

    def __init__(
        self,
        submit: Callable[[list[Any], int], Any],
        inputs: Iterator[Any],
        chunksize: int,
        window: int,
        ordered: bool,
    ) -> None:
        self._submit = submit
        self._inputs = inputs
        self._chunksize = chunksize
        self._ordered = ordered
        self._exhausted = False
        self._submitted = 0
        self._in_flight: dict[Any, int] = {}
        self._finished: dict[int, list[Any]] = {}
        self._next_chunk = 0  # used when ordered
        self._buffer: collections.deque[Any] = collections.deque()
        for _ in range(window):
            self._submit_next_chunk()

    def _submit_next_chunk(self) -> None:
        if self._exhausted:
            return
        chunk = [
            item for _, item in zip(range(self._chunksize), self._inputs, strict=False)
        ]
        if len(chunk) < self._chunksize:
            self._exhausted = True
        if chunk:
            self._in_flight[self._submit(chunk, self._submitted)] = self._submitted
            self._submitted += 1

    def __iter__(self) -> IMapIterator:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        """Return the next result.

        Args:
            timeout: Seconds to wait; ``None`` waits forever.

        Returns:
            The next call's value.

        Raises:
            StopIteration: When every result has been returned.
            multiprocessing.TimeoutError: If no result arrived in time.
            Exception: The exception raised by the call whose turn it is.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            if not self._take_finished_chunk():
                if not self._in_flight:
                    raise StopIteration
                self._wait_for_chunks(deadline)
        item = self._buffer.popleft()
        if isinstance(item, TaskFailure):
            raise item.error
        return item

    def _take_finished_chunk(self) -> bool:
        if self._ordered:
            chunk = self._finished.pop(self._next_chunk, None)
            if chunk is None:
                return False
            self._next_chunk += 1
        elif self._finished:
            chunk = self._finished.pop(next(iter(self._finished)))
        else:
            return False
        self._buffer.extend(chunk)
        return True

    def _wait_for_chunks(self, deadline: float | None) -> None:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _ = ember.wait(list(self._in_flight), num_returns=1, timeout=remaining)
        if not ready:
            raise TimeoutError
        for ref in ready:
            self._finished[self._in_flight.pop(ref)] = _fetch_chunk(ref)
            self._submit_next_chunk()
