"""A ``concurrent.futures.Executor`` whose calls run on the cluster: as tasks, or on actors.

``RayExecutor()`` runs each ``submit(fn, ...)`` as an ember task;
``RayExecutor(max_workers=n, use_actors=True)`` starts ``n`` actors (each runs
``initializer(*initargs)`` once, like a ``ProcessPoolExecutor`` worker) and
gives each call to a free one. In task mode ``max_workers`` caps the calls in
flight (None: ember's scheduler alone decides). Ray 2.60 ships no such class
(two pull requests proposing ``ray.util.concurrent.futures.RayExecutor`` were
closed), so this follows the standard library's ``Executor`` contract.

A dispatcher thread feeds the cluster from a queue, so ``submit`` never blocks
and completion callbacks (run on ember's I/O thread) only set futures and free
a slot.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

import ember


@ember.remote
def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


class _PoolWorker:
    """Actor body: runs the initializer once, then the calls it is given."""

    def __init__(
        self, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]
    ) -> None:
        if initializer is not None:
            initializer(*initargs)

    def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return fn(*args, **kwargs)


_Item = tuple[
    concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]
]


class RayExecutor(concurrent.futures.Executor):
    """Run calls on the cluster with the ``concurrent.futures`` interface.

    Args:
        max_workers: actors in the pool (``use_actors``; default: the
            cluster's CPUs), or the most calls in flight at once (tasks;
            default: no cap).
        use_actors: run calls on a pool of actors instead of as tasks.
        initializer, initargs: run once in each actor (``use_actors`` only).
        ray_remote_args: ``.options()`` for each task or actor
            (e.g. ``{"num_cpus": 2}``).
        **init_kwargs: passed to ``ember.init()`` when the program is not
            connected yet; ember is then shut down with the executor.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        use_actors: bool = False,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        ray_remote_args: dict[str, Any] | None = None,
        **init_kwargs: Any,
    ) -> None:
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not use_actors:
            raise ValueError(
                "initializer runs once per worker: it needs use_actors=True "
                "(tasks have no long-lived worker to initialize)"
            )
        self._owns_ember = not ember.is_initialized()
        if self._owns_ember:
            ember.init(**init_kwargs)
        options = dict(ray_remote_args or {})
        self._free: queue.Queue[Any] = queue.Queue()
        self._actors: list[Any] = []
        if use_actors:
            n = max_workers or max(int(ember.cluster_resources().get("CPU", 1)), 1)
            worker_cls = ember.remote(_PoolWorker)
            opts = {"num_cpus": 1, **options}
            self._actors = [
                worker_cls.options(**opts).remote(initializer, initargs)
                for _ in range(n)
            ]
            for actor in self._actors:
                self._free.put(actor)
            self._slots: threading.Semaphore | None = None
        else:
            self._task = _call.options(**options) if options else _call
            self._slots = threading.Semaphore(max_workers) if max_workers else None
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shutdown = False
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="ember-executor", daemon=True
        )
        self._dispatcher.start()

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            self._pending.add(future)
            self._work.put((future, fn, args, kwargs))
        future.add_done_callback(self._forget)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            queued = list(self._pending) if cancel_futures else []
            self._work.put(None)
        for f in queued:  # outside the lock: cancel() runs _forget, which takes it
            f.cancel()
        if wait:
            self._dispatcher.join()
            concurrent.futures.wait(list(self._pending))
        for actor in self._actors:
            ember.kill(actor)
        if self._owns_ember and wait:
            ember.shutdown()

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _dispatch(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args, kwargs = item
            if future.cancelled():
                continue
            actor = self._acquire()  # a queued call stays cancellable while it waits
            if not future.set_running_or_notify_cancel():
                self._release(actor)
                continue
            try:
                if actor is None:
                    ref = self._task.remote(fn, args, kwargs)
                else:
                    ref = actor.call.remote(fn, args, kwargs)
            except BaseException as exc:  # noqa: BLE001 - the caller sees it on the future
                self._release(actor)
                future.set_exception(exc)
                continue
            ref.future().add_done_callback(
                lambda done, f=future, a=actor: self._finish(done, f, a)
            )

    def _acquire(self) -> Any:
        if self._actors:
            return self._free.get()
        if self._slots is not None:
            self._slots.acquire()
        return None

    def _release(self, actor: Any) -> None:
        if actor is not None:
            self._free.put(actor)
        elif self._slots is not None:
            self._slots.release()

    def _finish(
        self,
        done: concurrent.futures.Future[Any],
        future: concurrent.futures.Future[Any],
        actor: Any,
    ) -> None:
        self._release(actor)
        try:
            result = done.result()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            future.set_exception(exc)
        else:
            future.set_result(result)


EmberExecutor = RayExecutor

__all__ = ["EmberExecutor", "RayExecutor"]
