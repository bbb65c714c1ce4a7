"""A fixed set of actors that share a stream of work.

Built only on the public API: every call made here is one a user program could
make (``ember.wait``, ``ember.get`` and ``ember.exceptions.ActorDiedError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import ember

V = TypeVar("V")

#: ``fn(actor, value)`` must start work on ``actor`` and return its ObjectRef
#: (or a list of ObjectRefs, which are then waited for and fetched together).
SubmitFn = Callable[[Any, V], Any]

_TIMEOUT_MESSAGE = "Timed out waiting for result"


def _key(future: Any) -> Any:
    """Return a hashable key for what ``fn`` returned (lists become tuples)."""
    return tuple(future) if isinstance(future, list) else future


def _is_ready(future: Any, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds for ``future`` (a ref or a list of refs)."""
    refs = list(future) if isinstance(future, list) else [future]
    if not refs:
        return True
    ready, _ = ember.wait(refs, num_returns=len(refs), timeout=timeout)
    return len(ready) == len(refs)


class ActorPool:
    """Spread work over a fixed pool of actors, one task per actor at a time.

    An actor counts as busy from the moment a task is handed to it until that
    task's result is collected with one of the ``get_next*`` methods. Work
    submitted while every actor is busy waits in a FIFO queue inside the pool.

    Args:
        actors: Actor handles to use. The pool takes a copy of the list.

    Example:
        >>> pool = ActorPool([Doubler.remote(), Doubler.remote()])
        >>> list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3]))
        [2, 4, 6]
    """

    def __init__(self, actors: Iterable[Any]) -> None:
        self._idle_actors: list[Any] = list(actors)
        # key of an in-flight future -> (submission index, actor running it)
        self._future_to_actor: dict[Any, tuple[int, Any]] = {}
        # submission index -> in-flight future (as returned by fn)
        self._index_to_future: dict[int, Any] = {}
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending_submits: list[tuple[SubmitFn[Any], Any]] = []

    def map(self, fn: SubmitFn[V], values: Iterable[V]) -> Iterator[Any]:
        """Apply ``fn`` to every value using the pool's actors.

        Results that earlier calls left uncollected are discarded first. All
        values are submitted immediately; the returned iterator yields results
        in the order of ``values`` and must be consumed to collect them.

        Args:
            fn: Called as ``fn(actor, value)``; returns an ObjectRef.
            values: The inputs.

        Returns:
            An iterator over the results, in submission order.
        """
        while self.has_next():
            try:
                self.get_next(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass
        for value in values:
            self.submit(fn, value)
        return self._drain(ordered=True)

    def map_unordered(self, fn: SubmitFn[V], values: Iterable[V]) -> Iterator[Any]:
        """Like :meth:`map`, but yield results in the order they complete.

        Args:
            fn: Called as ``fn(actor, value)``; returns an ObjectRef.
            values: The inputs.

        Returns:
            An iterator over the results, in completion order.
        """
        while self.has_next():
            try:
                self.get_next_unordered(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass
        for value in values:
            self.submit(fn, value)
        return self._drain(ordered=False)

    def _drain(self, ordered: bool) -> Iterator[Any]:
        while self.has_next():
            yield self.get_next() if ordered else self.get_next_unordered()

    def submit(self, fn: SubmitFn[V], value: V) -> None:
        """Schedule ``fn(actor, value)`` on an idle actor, or queue it.

        Collect the result with :meth:`get_next` or :meth:`get_next_unordered`.

        Args:
            fn: Called as ``fn(actor, value)``; returns an ObjectRef.
            value: The input for this task.
        """
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        future = fn(actor, value)
        self._future_to_actor[_key(future)] = (self._next_task_index, actor)
        self._index_to_future[self._next_task_index] = future
        self._next_task_index += 1

    def has_next(self) -> bool:
        """Return whether any submitted task's result is still to be collected.

        Returns:
            True while a task is running on an actor and not yet collected.
        """
        return bool(self._future_to_actor)

    def get_next(
        self, timeout: float | None = None, ignore_if_timedout: bool = False
    ) -> Any:
        """Return the next result in submission order.

        Args:
            timeout: Seconds to wait for the result; ``None`` waits forever.
            ignore_if_timedout: On timeout, give up on that task (its actor
                is returned to the pool) before raising, instead of keeping it
                as the next result to return.

        Returns:
            The result of the oldest uncollected task.

        Raises:
            StopIteration: If there is nothing left to collect.
            ValueError: If called after :meth:`get_next_unordered` skipped
                past the next result in order.
            TimeoutError: If ``timeout`` expired first.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError(
                "It is not allowed to call get_next() after get_next_unordered()."
            )
        index = self._next_return_index
        future = self._index_to_future[index]
        timed_out = timeout is not None and not _is_ready(future, timeout)
        if timed_out and not ignore_if_timedout:
            raise TimeoutError(_TIMEOUT_MESSAGE)
        del self._index_to_future[index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        if timed_out:
            self._return_actor(actor)
            raise TimeoutError(
                f"{_TIMEOUT_MESSAGE}. The task {future} has been ignored."
            )
        return self._get_result(future, actor)

    def get_next_unordered(
        self, timeout: float | None = None, ignore_if_timedout: bool = False
    ) -> Any:
        """Return whichever uncollected result is ready first.

        Args:
            timeout: Seconds to wait for any result; ``None`` waits forever.
            ignore_if_timedout: On timeout, give up on the oldest uncollected
                task (its actor is returned to the pool) before raising.

        Returns:
            The result of some completed task.

        Raises:
            StopIteration: If there is nothing left to collect.
            TimeoutError: If ``timeout`` expired before any result was ready.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        future = self._first_ready(timeout)
        timed_out = future is None
        if timed_out:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MESSAGE)
            future = self._index_to_future[min(self._index_to_future)]
        index, actor = self._future_to_actor.pop(_key(future))
        del self._index_to_future[index]
        self._next_return_index = max(self._next_return_index, index + 1)
        if timed_out:
            self._return_actor(actor)
            raise TimeoutError(
                f"{_TIMEOUT_MESSAGE}. The task {future} has been ignored."
            )
        return self._get_result(future, actor)

    def _first_ready(self, timeout: float | None) -> Any:
        """Return some in-flight future that is ready, or None on timeout."""
        futures = list(self._index_to_future.values())
        if all(not isinstance(f, list) for f in futures):
            ready, _ = ember.wait(futures, num_returns=1, timeout=timeout)
            return ready[0] if ready else None
        # Some tasks returned several refs: a task is ready once all of its are.
        flat = [r for f in futures for r in (f if isinstance(f, list) else [f])]
        ready, _ = ember.wait(flat, num_returns=len(flat), timeout=0)
        done = set(ready)
        for future in futures:
            if all(
                r in done for r in (future if isinstance(future, list) else [future])
            ):
                return future
        # None is ready yet: wait on the oldest task (dicts keep insertion order).
        oldest = futures[0]
        return oldest if _is_ready(oldest, timeout) else None

    def _get_result(self, future: Any, actor: Any) -> Any:
        alive = True
        try:
            return ember.get(future)
        except ember.exceptions.ActorDiedError:
            alive = False
            raise
        finally:
            self._return_actor(actor, alive=alive)

    def _return_actor(self, actor: Any, alive: bool = True) -> None:
        # A dead actor is dropped, or submit() would keep handing it work.
        if alive:
            self._idle_actors.append(actor)
        if self._pending_submits and self._idle_actors:
            self.submit(*self._pending_submits.pop(0))

    def has_free(self) -> bool:
        """Return whether an actor is idle and no submitted work is queued.

        Returns:
            True if :meth:`submit` would start work right away.
        """
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self) -> Any | None:
        """Remove an idle actor from the pool and return it.

        Returns:
            An idle actor handle, or None if no actor is free.
        """
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor: Any) -> None:
        """Add an actor to the pool; queued work starts on it immediately.

        Args:
            actor: The actor handle to add.

        Raises:
            ValueError: If the actor already belongs to this pool.
        """
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)
