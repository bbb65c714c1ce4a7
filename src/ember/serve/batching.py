"""``@serve.batch``: concurrent calls of an async function or method become one call on a list.

A call puts its arguments in the queue and waits. The queue's task takes up to
``max_batch_size`` items, waiting at most ``batch_wait_timeout_s`` after the first one
for the batch to fill, calls the function once with a list per argument and hands
result ``i`` back to call ``i``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import deque
from collections.abc import Callable
from typing import Any

from ember.serve.exceptions import ServeConfigError

__all__ = ["batch"]


class _BatchQueue:
    def __init__(
        self,
        fn: Callable[..., Any],
        max_batch_size: int,
        timeout_s: float,
        concurrency: int,
    ) -> None:
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.items: deque[tuple[tuple, dict, asyncio.Future[Any]]] = deque()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._calls: set[asyncio.Task[None]] = set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, args: tuple, kwargs: dict) -> asyncio.Future[Any]:
        fut = asyncio.get_running_loop().create_future()
        self.items.append((args, kwargs, fut))
        self._arrived.set()
        return fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.items:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.timeout_s
            while len(self.items) < self.max_batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
            n = min(len(self.items), self.max_batch_size)
            taken = [self.items.popleft() for _ in range(n)]
            taken = [t for t in taken if not t[2].done()]
            if not taken:
                continue
            await self._slots.acquire()
            t = loop.create_task(self._call(taken))
            self._calls.add(t)
            t.add_done_callback(self._calls.discard)

    async def _call(self, taken: list[tuple[tuple, dict, asyncio.Future[Any]]]) -> None:
        try:
            nargs = len(taken[0][0])
            args = [[t[0][i] for t in taken] for i in range(nargs)]
            keys = taken[0][1].keys()
            kwargs = {k: [t[1][k] for t in taken] for k in keys}
            try:
                results = await self.fn(*args, **kwargs)
                if not isinstance(results, (list, tuple)) or len(results) != len(taken):
                    raise TypeError(
                        "Batched function doesn't preserve batch size: it got "
                        f"{len(taken)} inputs and returned "
                        f"{len(results) if isinstance(results, (list, tuple)) else results!r}."
                    )
            except Exception as e:  # noqa: BLE001 - every caller of the batch sees it
                for _, _, fut in taken:
                    if not fut.done():
                        fut.set_exception(e)
                return
            for (_, _, fut), r in zip(taken, results, strict=True):
                if not fut.done():
                    fut.set_result(r)
        finally:
            self._slots.release()


def batch(
    _func: Callable[..., Any] | None = None,
    /,
    max_batch_size: int = 10,
    batch_wait_timeout_s: float = 0.01,
    max_concurrent_batches: int = 1,
    batch_size_fn: Callable[..., int] | None = None,
) -> Any:
    """Batch concurrent calls of an ``async def`` taking lists (a function or a method)."""
    if not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ServeConfigError(
            f"max_batch_size must be an int >= 1, got {max_batch_size!r}"
        )
    if not isinstance(batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ServeConfigError(
            f"batch_wait_timeout_s must be a number >= 0, got {batch_wait_timeout_s!r}"
        )
    if batch_size_fn is not None:
        raise ServeConfigError("batch_size_fn is not supported by ember.serve")

    def wrap(fn: Callable[..., Any]) -> Any:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                "Functions decorated with @serve.batch must be 'async def' functions "
                f"(got {fn!r})."
            )
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        attr = f"__serve_batch_queue_{fn.__name__}"
        settings: dict[str, Any] = {
            "size": max_batch_size,
            "timeout": batch_wait_timeout_s,
        }
        shared: dict[int, _BatchQueue] = {}

        def queue_for(owner: Any) -> _BatchQueue:
            loop_id = id(asyncio.get_running_loop())
            if is_method:
                q = owner.__dict__.get(attr)
                if q is None or q[0] != loop_id:
                    bound = functools.partial(fn, owner)
                    q = (
                        loop_id,
                        _BatchQueue(
                            bound,
                            settings["size"],
                            settings["timeout"],
                            max_concurrent_batches,
                        ),
                    )
                    owner.__dict__[attr] = q
                return q[1]
            if loop_id not in shared:
                shared[loop_id] = _BatchQueue(
                    fn, settings["size"], settings["timeout"], max_concurrent_batches
                )
            return shared[loop_id]

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if is_method:
                owner, args = args[0], args[1:]
                q = queue_for(owner)
            else:
                q = queue_for(None)
            q.max_batch_size, q.timeout_s = settings["size"], settings["timeout"]
            return await q.put(args, kwargs)

        def set_max_batch_size(n: int) -> None:
            settings["size"] = n

        def set_batch_wait_timeout_s(t: float) -> None:
            settings["timeout"] = t

        wrapper.set_max_batch_size = set_max_batch_size  # type: ignore[attr-defined]
        wrapper.set_batch_wait_timeout_s = set_batch_wait_timeout_s  # type: ignore[attr-defined]
        return wrapper

    if _func is not None:
        return wrap(_func)
    return wrap
