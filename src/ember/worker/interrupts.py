"""Cancelling the task the main thread runs: an interrupt reaches only its own task.

Theory of operation. ``worker.cancel_task`` arrives on the loop thread; the
task runs on the main thread, and the interrupt is a SIGINT, which Python
delivers at some later bytecode of the main thread. Checking "is A running?"
and then signalling is a race: by the time the signal lands, A may have
finished and B (or the idle main loop) would get the ``KeyboardInterrupt``.
So every run on the main thread gets a fresh *run number*; a cancel records
the run number it aims at (under the lock, so check and aim are one step),
and the SIGINT handler raises only while that same run is still the current
one, once. A stale signal is counted in :attr:`TaskInterrupts.stale` and
dropped::

    loop thread                          main thread
    cancel(A): lock                      begin(A): lock, run = n, unlock
      run's task is A -> aimed = n          ... user code ...
    unlock; pthread_kill(SIGINT) ------> handler: aimed == run == n ? raise : drop
                                         end(): run = 0 (a later signal is stale)

A SIGINT that arrives just before the main thread blocks in a lock wait
does not wake it (CPython runs the handler when the wait returns), so while
the aimed run is current and has not raised, the signal is sent again every
``RESEND_S``; extra signals are dropped as stale by the same check.

A cancel for a task that is queued and not started yet marks it; ``begin``
then refuses to run it. A cancel for a task this worker no longer knows
(finished) does nothing. The interrupt can land anywhere between ``begin``
and ``end``, so the caller keeps both inside one ``try`` that handles
:class:`KeyboardInterrupt`.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

from ember.runtime import task_context

RESEND_S = 0.1


class TaskInterrupts:
    """Which task the main thread runs, and the cancels aimed at it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._main_ident = threading.main_thread().ident
        #: pushed to this worker, not started yet
        self._queued: set[bytes] = set()
        #: cancelled while queued: ``begin`` refuses them
        self._cancelled: set[bytes] = set()
        self._task = b""
        self._run = 0  # the current run on the main thread, 0 between runs
        self._runs = 0
        self._aimed = 0  # the run a pending SIGINT is meant for
        self._raised = 0  # the run that got its KeyboardInterrupt already
        #: interrupts that arrived after their run had ended (dropped)
        self.stale = 0

    def install(self) -> Any:
        """Main thread: route SIGINT through :meth:`on_signal`; the previous handler."""
        return signal.signal(signal.SIGINT, self.on_signal)

    def queued(self, task_id: bytes) -> None:
        """Loop thread: ``task_id`` was pushed and will run on the main thread."""
        self._queued.add(task_id)

    def begin(self, task_id: bytes) -> bool:
        """Main thread: a run of ``task_id`` starts; False if it was cancelled first."""
        with self._lock:
            self._queued.discard(task_id)
            if task_id in self._cancelled:
                self._cancelled.discard(task_id)
                return False
            self._runs += 1
            self._task = task_id
            self._run = self._runs
            return True

    def end(self) -> None:
        """Main thread: the run is over; an interrupt still on its way is stale."""
        self._run = 0  # first, so a signal handled from here on is dropped
        with self._lock:
            task_context.cancel_requested.discard(self._task)
            self._task = b""
            self._aimed = 0

    def cancel(self, task_id: bytes, force: bool) -> bool:
        """Loop thread: interrupt ``task_id`` if it runs, or mark it if queued.

        With ``force`` a running task ends the whole process at once. Returns
        whether the task was running.
        """
        with self._lock:
            if self._run == 0 or self._task != task_id:
                if task_id in self._queued:
                    self._cancelled.add(task_id)
                return False
            if force:
                os._exit(1)
            task_context.cancel_requested.add(task_id)
            if self._aimed == self._run:
                return True  # already on its way (and sent again until it lands)
            self._aimed = run = self._run
        self._send(run)
        return True

    def _send(self, run: int) -> None:
        signal.pthread_kill(self._main_ident, signal.SIGINT)  # type: ignore[arg-type]
        timer = threading.Timer(RESEND_S, self._resend, (run,))
        timer.daemon = True
        timer.start()

    def _resend(self, run: int) -> None:
        """Timer thread: send the interrupt again while it has not landed."""
        with self._lock:
            if self._run != run or self._aimed != run or self._raised == run:
                return
        self._send(run)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The SIGINT handler (main thread): raise in the run it was aimed at, once."""
        run = self._run
        if run and self._aimed == run and self._raised != run:
            self._raised = run
            raise KeyboardInterrupt
        self.stale += 1
