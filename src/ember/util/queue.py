"""A FIFO queue shared between tasks and actors, held by one async actor.

The :class:`Queue` object is a thin client around an actor handle, so it can
be passed to (pickled into) tasks and actors, and all copies talk to the same
queue. Built only on the public API.
"""

from __future__ import annotations

import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable
from typing import Any

import ember

__all__ = ["Empty", "Full", "Queue"]


class Empty(_stdlib_queue.Empty):
    """Raised when an item is requested from an empty queue."""


class Full(_stdlib_queue.Full):
    """Raised when an item is added to a full queue."""


# The actor reports failures as (ok, payload) pairs instead of raising, so the
# client can raise a plain Empty/Full rather than a wrapped task error.
_Reply = tuple[bool, Any]


class _QueueActor:
    """Actor body: owns an ``asyncio.Queue`` on the actor's event loop."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> _Reply:
        if timeout is not None and timeout <= 0:
            return self.put_nowait(item)
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except TimeoutError:
            return False, None
        return True, None

    async def get(self, timeout: float | None = None) -> _Reply:
        if timeout is not None and timeout <= 0:
            return self.get_nowait()
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return False, None

    def put_nowait(self, item: Any) -> _Reply:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False, None
        return True, None

    def get_nowait(self) -> _Reply:
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    def put_nowait_batch(self, items: list[Any]) -> _Reply:
        # All or nothing: a batch that does not fit is rejected whole.
        if self.maxsize > 0 and len(items) + self.qsize() > self.maxsize:
            return False, (
                f"Cannot add {len(items)} items to queue of size "
                f"{self.qsize()} and maxsize {self.maxsize}."
            )
        for item in items:
            self.queue.put_nowait(item)
        return True, None

    def get_nowait_batch(self, num_items: int) -> _Reply:
        if num_items > self.qsize():
            return False, (
                f"Cannot get {num_items} items from queue of size {self.qsize()}."
            )
        return True, [self.queue.get_nowait() for _ in range(num_items)]

    async def terminate(self) -> None:
        from ember.actor import exit_actor

        exit_actor()


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


def _unwrap(reply: _Reply, error: type[Exception]) -> Any:
    ok, payload = reply
    if not ok:
        raise error(payload) if payload is not None else error()
    return payload


class Queue:
    """A first-in, first-out queue usable from any task, actor or driver.

    Behaves like :class:`asyncio.Queue`, with blocking and non-blocking
    ``put``/``get``, ``async`` variants, and batched operations that move many
    items in one round trip.

    Args:
        maxsize: Maximum number of items held; ``0`` means unbounded.
        actor_options: Options for the backing actor, passed as-is to
            ``.options(...)`` (for example ``{"num_cpus": 1}``).

    Example:
        >>> q = Queue(maxsize=10)
        >>> q.put(1)
        >>> q.get()
        1
    """

    def __init__(
        self, maxsize: int = 0, actor_options: dict[str, Any] | None = None
    ) -> None:
        self.maxsize = maxsize
        actor_cls = ember.remote(_QueueActor).options(**(actor_options or {}))
        self.actor: Any = actor_cls.remote(self.maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """Return the number of items currently in the queue."""
        return ember.get(self.actor.qsize.remote())

    def qsize(self) -> int:
        """Return the number of items currently in the queue."""
        return self.size()

    def empty(self) -> bool:
        """Return whether the queue holds no items."""
        return ember.get(self.actor.empty.remote())

    def full(self) -> bool:
        """Return whether the queue holds ``maxsize`` items."""
        return ember.get(self.actor.full.remote())

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add an item to the queue.

        With concurrent producers on a full queue, the order in which their
        items are added is not guaranteed.

        Args:
            item: The item to add.
            block: Wait for free space if the queue is full.
            timeout: With ``block``, the most seconds to wait; ``None`` waits
                forever.

        Raises:
            Full: If the queue is full and ``block`` is False, or the wait
                timed out.
            ValueError: If ``timeout`` is negative.
        """
        if not block:
            _unwrap(ember.get(self.actor.put_nowait.remote(item)), Full)
            return
        _check_timeout(timeout)
        _unwrap(ember.get(self.actor.put.remote(item, timeout)), Full)

    async def put_async(
        self, item: Any, block: bool = True, timeout: float | None = None
    ) -> None:
        """Add an item to the queue without blocking the event loop.

        Args:
            item: The item to add.
            block: Wait for free space if the queue is full.
            timeout: With ``block``, the most seconds to wait; ``None`` waits
                forever.

        Raises:
            Full: If the queue is full and ``block`` is False, or the wait
                timed out.
            ValueError: If ``timeout`` is negative.
        """
        if not block:
            _unwrap(await self.actor.put_nowait.remote(item), Full)
            return
        _check_timeout(timeout)
        _unwrap(await self.actor.put.remote(item, timeout), Full)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item.

        With concurrent consumers on an empty queue, which consumer receives
        which item is not guaranteed.

        Args:
            block: Wait for an item if the queue is empty.
            timeout: With ``block``, the most seconds to wait; ``None`` waits
                forever.

        Returns:
            The oldest item in the queue.

        Raises:
            Empty: If the queue is empty and ``block`` is False, or the wait
                timed out.
            ValueError: If ``timeout`` is negative.
        """
        if not block:
            return _unwrap(ember.get(self.actor.get_nowait.remote()), Empty)
        _check_timeout(timeout)
        return _unwrap(ember.get(self.actor.get.remote(timeout)), Empty)

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item without blocking the event loop.

        Args:
            block: Wait for an item if the queue is empty.
            timeout: With ``block``, the most seconds to wait; ``None`` waits
                forever.

        Returns:
            The oldest item in the queue.

        Raises:
            Empty: If the queue is empty and ``block`` is False, or the wait
                timed out.
            ValueError: If ``timeout`` is negative.
        """
        if not block:
            return _unwrap(await self.actor.get_nowait.remote(), Empty)
        _check_timeout(timeout)
        return _unwrap(await self.actor.get.remote(timeout), Empty)

    def put_nowait(self, item: Any) -> None:
        """Same as ``put(item, block=False)``.

        Raises:
            Full: If the queue is full.
        """
        self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all ``items`` in order, or none of them if they do not fit.

        Args:
            items: The items to add.

        Raises:
            TypeError: If ``items`` is not iterable.
            Full: If the queue lacks room for every item.
        """
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        _unwrap(ember.get(self.actor.put_nowait_batch.remote(list(items))), Full)

    def get_nowait(self) -> Any:
        """Same as ``get(block=False)``.

        Raises:
            Empty: If the queue is empty.
        """
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """Remove and return the ``num_items`` oldest items, in order.

        Args:
            num_items: How many items to take.

        Returns:
            The items, oldest first.

        Raises:
            TypeError: If ``num_items`` is not an int.
            ValueError: If ``num_items`` is negative.
            Empty: If fewer than ``num_items`` items are queued (none are
                removed then).
        """
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        return _unwrap(ember.get(self.actor.get_nowait_batch.remote(num_items)), Empty)

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """Stop the backing actor and release its resources.

        Args:
            force: Kill the actor at once. Otherwise ask it to exit and kill
                it only if it has not exited after ``grace_period_s``.
            grace_period_s: Seconds to wait for a graceful exit.
        """
        if self.actor is not None:
            if force:
                ember.kill(self.actor, no_restart=True)
            else:
                done = self.actor.terminate.remote()
                _, not_done = ember.wait([done], timeout=grace_period_s)
                if not_done:
                    ember.kill(self.actor, no_restart=True)
        self.actor = None
