"""The background event-loop thread and the sync bridge into it."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ember.common.aio import new_event_loop

logger = logging.getLogger(__name__)
T = TypeVar("T")
#: longest a lazy call (see LoopThread.call_lazy) waits for a batch to join
LAZY_DELAY_S = 0.005


class LoopThread:
    """Runs one event loop in a daemon thread; user threads call into it."""

    def __init__(self, name: str = "ember-io") -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._batch: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._batch_scheduled = False
        self._lazy_armed = False
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it from this (non-loop) thread."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            if fut.done():
                raise  # the coroutine itself raised a TimeoutError (GetTimeoutError)
            fut.cancel()
            raise TimeoutError from None

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop (thread-safe, no wait)."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop is closed: we are shutting down

    def call_batched(self, fn: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`call`, but one loop wake-up serves a burst of calls.

        ``f.remote()`` in a loop would otherwise wake the loop (a write to its
        self-pipe) once per task; here calls queue up and one callback drains
        them in order.
        """
        self._batch.append((fn, args))
        if not self._batch_scheduled:
            self._batch_scheduled = True
            self.call(self._drain)

    def call_lazy(self, fn: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`call_batched` for work nobody waits on (reference releases).

        It runs with the next batch, or at most ``LAZY_DELAY_S`` later, so a
        ``get``/``del`` loop does not wake the loop once more per object.
        """
        self._batch.append((fn, args))
        if not self._batch_scheduled and not self._lazy_armed:
            self._lazy_armed = True
            self.call(self._arm_lazy)

    def _arm_lazy(self) -> None:
        self.loop.call_later(LAZY_DELAY_S, self._lazy_due)

    def _lazy_due(self) -> None:
        self._lazy_armed = False
        self._drain()

    def _drain(self) -> None:
        """Run every queued call; one that raises is logged and does not stop the rest."""
        self._batch_scheduled = False
        batch = self._batch
        while batch:
            fn, args = batch.popleft()
            try:
                fn(*args)
            except Exception:
                logger.exception("batched loop callback %r failed", fn)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
