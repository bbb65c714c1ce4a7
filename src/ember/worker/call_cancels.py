"""Cancelling an actor's calls: which are queued or running, and what a cancel does.

Ray 2.60's rules for ``ray.cancel`` of an actor call that reached the actor
(observed on a real Ray, see docs/seams/actors.md): a call not started yet is
not run; a running coroutine of an async actor is cancelled as asyncio
cancels a task (``CancelledError`` at its ``await``); a running call of a sync
or threaded actor is not interrupted, only
``get_runtime_context().is_canceled()`` turns True in it. Whatever a call
that a cancel reached does afterwards (returns, swallows the
``CancelledError``, raises), its caller gets ``TaskCancelledError``
(:meth:`CallCancels.requested`).

Theory of operation. Calls reach the actor on the worker's loop thread
(:meth:`CallCancels.queued`) and start on the thread that runs them (the main
thread, a pool thread, or an async actor's event loop: :meth:`CallCancels.begin`);
``worker.cancel_task`` arrives on the loop thread too, after the push of the
call it names (one connection, in order).  One lock makes "is it queued or
running?" and the cancel's effect one step::

    loop thread                          executing thread
    queued(A)           -- A queued -->  begin(A): cancelled? refuse : running
    cancel(A): lock                        ... the call runs ...
      queued?  mark: begin refuses         outcome: requested(A)? TaskCancelledError
      running? requested; then             end(A): forget A (a later cancel is a no-op)
        sync:  is_canceled() flag
        async: task.cancel() on its loop (call_soon_threadsafe)

A cancel for a call this worker does not know (finished) does nothing.  An
async call registers its asyncio task before it waits for its concurrency
slot, so a call cancelled while waiting for one never starts either.
"""

from __future__ import annotations

import asyncio
import threading

from ember.runtime import task_context


class CallCancels:
    """The calls of this worker's actor that a cancel can still reach."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: pushed to this actor, not started yet
        self._queued: set[bytes] = set()
        #: cancelled while queued: ``begin`` refuses them
        self._cancelled: set[bytes] = set()
        #: started: the asyncio task and its loop (async calls), or None (sync calls)
        self._running: dict[
            bytes, tuple[asyncio.AbstractEventLoop, asyncio.Task[None]] | None
        ] = {}
        #: running calls a cancel reached: their outcome is TaskCancelledError
        self._requested: set[bytes] = set()

    def queued(self, task_id: bytes) -> None:
        """Loop thread: the call ``task_id`` reached the actor."""
        with self._lock:
            self._queued.add(task_id)

    def begin(
        self,
        task_id: bytes,
        task: asyncio.Task[None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> bool:
        """Executing thread: the call starts; False if it was cancelled first.

        An async call passes its asyncio ``task`` and ``loop`` (a cancel then
        cancels the task).  A call that began already begins again at no cost
        (the sync method of an async actor is registered by its event loop).
        """
        with self._lock:
            if task_id in self._running:
                return True
            self._queued.discard(task_id)
            if task_id in self._cancelled:
                self._cancelled.discard(task_id)
                return False
            self._running[task_id] = (
                (loop, task) if task is not None and loop is not None else None
            )
            return True

    def requested(self, task_id: bytes) -> bool:
        """Executing thread: whether a cancel reached the running call ``task_id``."""
        return task_id in self._requested

    def end(self, task_id: bytes) -> None:
        """Executing thread: the call is over (or was refused); forget it."""
        with self._lock:
            self._running.pop(task_id, None)
            self._queued.discard(task_id)
            self._cancelled.discard(task_id)
            self._requested.discard(task_id)
            task_context.cancel_requested.discard(task_id)

    def cancel(self, task_id: bytes) -> bool:
        """Loop thread: cancel the call ``task_id``; False if it is not here."""
        with self._lock:
            if task_id in self._queued:
                self._cancelled.add(task_id)
                return True
            if task_id not in self._running:
                return False
            self._requested.add(task_id)
            target = self._running[task_id]
            if target is None:  # a sync call: it may look, it is not interrupted
                task_context.cancel_requested.add(task_id)
                return True
        loop, task = target
        loop.call_soon_threadsafe(task.cancel)
        return True

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {
                "queued": len(self._queued),
                "running": len(self._running),
                "cancelled": len(self._cancelled),
                "requested": len(self._requested),
            }
