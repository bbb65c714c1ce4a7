"""Small asyncio helpers: a supervisor for background tasks, loop setup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class Supervisor:
    """Owns background tasks: keeps references, logs failures, cancels on close."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.error(
                "%s: background task %s failed",
                self.name,
                task.get_name(),
                exc_info=exc,
            )

    def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available, else the default loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()
