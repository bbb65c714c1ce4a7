"""A drop-in replacement for :class:`multiprocessing.pool.Pool` run on actors.

Each process slot of the pool is one worker actor. Work is cut into chunks of
calls; chunks go to the actors round-robin and run one at a time per actor.
Built only on the public API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import ember
from ember.util.multiprocessing.results import AsyncResult, IMapIterator, TaskFailure

__all__ = ["AsyncResult", "IMapIterator", "Pool"]

logger = logging.getLogger(__name__)

#: Environment variables naming a cluster to connect to, checked in order.
ADDRESS_ENV_VARS = ("EMBER_ADDRESS", "RAY_ADDRESS")

_Call = tuple[tuple[Any, ...], dict[str, Any]]


class _PoolWorker:
    """Actor body for one process slot of the pool."""

    def __init__(
        self, initializer: Callable[..., object] | None, initargs: Any
    ) -> None:
        if initializer is not None:
            initializer(*(initargs or ()))

    def ping(self) -> None:
        return None

    def run_batch(self, func: Callable[..., Any], batch: list[_Call]) -> list[Any]:
        results: list[Any] = []
        for args, kwargs in batch:
            try:
                results.append(func(*(args or ()), **(kwargs or {})))
            except Exception as exc:  # noqa: BLE001 - reported per call to the driver
                results.append(TaskFailure(exc))
        return results

    def stop(self) -> None:
        from ember.actor import exit_actor

        exit_actor()


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Pool:
    """A pool of worker actors with the :class:`multiprocessing.Pool` API.

    Connects to (or starts) a cluster if none is initialized: ``ray_address``
    or the ``EMBER_ADDRESS``/``RAY_ADDRESS`` variable names one; otherwise a
    local cluster with ``processes`` CPUs is started.

    Args:
        processes: Number of worker actors; defaults to the cluster's CPUs.
        initializer: Called as ``initializer(*initargs)`` in each new worker.
        initargs: Arguments for ``initializer``.
        maxtasksperchild: Chunks a worker runs before it is replaced by a
            fresh one; ``None`` means never.
        context: Accepted for compatibility and ignored.
        ray_address: Address of the cluster to connect to if not initialized.
        ray_remote_args: Extra ``.options(...)`` for the worker actors.

    Raises:
        ValueError: If ``processes`` is not positive or exceeds the CPUs of
            the cluster.
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] | None = None,
        maxtasksperchild: int | None = None,
        context: Any = None,
        ray_address: str | None = None,
        ray_remote_args: dict[str, Any] | None = None,
    ) -> None:
        self._closed = False
        self._initializer = initializer
        self._initargs = tuple(initargs) if initargs is not None else None
        self._maxtasksperchild = maxtasksperchild or -1
        self._stop_refs: list[Any] = []
        self._next_index = 0
        if context is not None:
            logger.warning("Pool ignores the 'context' argument.")
        processes = self._connect(processes, ray_address)
        self._actor_class = ember.remote(_PoolWorker).options(
            num_cpus=0, **(ray_remote_args or {})
        )
        self._actor_pool: list[list[Any]] = [
            self._new_worker() for _ in range(processes)
        ]
        ember.get([actor.ping.remote() for actor, _ in self._actor_pool])

    @staticmethod
    def _connect(processes: int | None, address: str | None) -> int:
        if not ember.is_initialized():
            if address is None:
                address = next(
                    (os.environ[v] for v in ADDRESS_ENV_VARS if os.environ.get(v)), None
                )
            if address is None:
                ember.init(num_cpus=processes)
            elif address == "local":
                ember.init(address=address, num_cpus=processes)
            else:
                ember.init(address=address)
        cpus = int(ember.cluster_resources().get("CPU", 0))
        if processes is None:
            processes = cpus
        if processes <= 0:
            raise ValueError("Processes in the pool must be >0.")
        if cpus < processes:
            raise ValueError(
                f"Tried to start a pool with {processes} processes on an existing "
                f"cluster, but there are only {cpus} CPUs in the cluster."
            )
        return processes

    def _new_worker(self) -> list[Any]:
        return [self._actor_class.remote(self._initializer, self._initargs), 0]

    def _stop_worker(self, actor: Any) -> None:
        # The stop call queues behind the worker's pending chunks, so they finish.
        self._stop_refs.append(actor.stop.remote())

    def _run_batch(
        self, index: int, func: Callable[..., Any], batch: list[_Call]
    ) -> Any:
        entry = self._actor_pool[index]
        ref = entry[0].run_batch.remote(func, batch)
        entry[1] += 1
        if entry[1] == self._maxtasksperchild:
            self._stop_worker(entry[0])
            self._actor_pool[index] = self._new_worker()
        return ref

    def _check_running(self) -> None:
        if self._closed:
            raise ValueError("Pool not running")

    def _default_chunksize(self, n_items: int) -> int:
        chunksize, extra = divmod(n_items, len(self._actor_pool) * 4)
        return chunksize + 1 if extra else chunksize

    def apply(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Run ``func(*args, **kwargs)`` on a worker and return its value."""
        return self.apply_async(func, args, kwargs).get()

    def apply_async(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Start ``func(*args, **kwargs)`` on the next worker in turn.

        Returns:
            An :class:`AsyncResult` whose ``get()`` returns the value.
        """
        self._check_running()
        self._next_index = (self._next_index + 1) % len(self._actor_pool)
        ref = self._run_batch(self._next_index, func, [(args or (), kwargs or {})])
        return AsyncResult([ref], callback, error_callback, single_result=True)

    def _map_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        star: bool,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        self._check_running()
        items: Sequence[Any] = (
            iterable if isinstance(iterable, Sequence) else list(iterable)
        )
        if chunksize is None:
            chunksize = self._default_chunksize(len(items))
        chunksize = max(chunksize, 1)  # the default is 0 for empty input
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (tuple(x) if star else (x,), {}) for x in items
        ]
        refs = [
            self._run_batch(
                i % len(self._actor_pool), func, calls[start : start + chunksize]
            )
            for i, start in enumerate(range(0, len(calls), chunksize))
        ]
        return AsyncResult(refs, callback, error_callback)

    def map(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
    ) -> list[Any]:
        """Return ``[func(x) for x in iterable]``, computed on the workers."""
        return self._map_async(func, iterable, chunksize, star=False).get()

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[list[Any]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Start :meth:`map` and return an :class:`AsyncResult` for the list."""
        return self._map_async(
            func, iterable, chunksize, False, callback, error_callback
        )

    def starmap(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
    ) -> list[Any]:
        """Return ``[func(*args) for args in iterable]``, computed on the workers."""
        return self._map_async(func, iterable, chunksize, star=True).get()

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        callback: Callable[[list[Any]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Start :meth:`starmap` and return an :class:`AsyncResult` for the list.

        As in Ray, there is no ``chunksize`` here (the stdlib's third argument):
        ``callback`` comes third.
        """
        return self._map_async(func, iterable, None, True, callback, error_callback)

    def _imap(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        ordered: bool,
    ) -> IMapIterator:
        self._check_running()
        if chunksize is None:
            chunksize = 1
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize}")

        def submit(chunk: list[Any], chunk_index: int) -> Any:
            actor_index = chunk_index % len(self._actor_pool)
            return self._run_batch(actor_index, func, [((x,), {}) for x in chunk])

        inputs: Iterator[Any] = iter(iterable)
        return IMapIterator(submit, inputs, chunksize, len(self._actor_pool), ordered)

    def imap(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1
    ) -> IMapIterator:
        """Lazily map ``func`` over ``iterable``; yield results in input order."""
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1
    ) -> IMapIterator:
        """Like :meth:`imap`, but yield results as they complete."""
        return self._imap(func, iterable, chunksize, ordered=False)

    def close(self) -> None:
        """Accept no more work; workers exit once their queued work is done."""
        if not self._closed:
            for actor, _ in self._actor_pool:
                self._stop_worker(actor)
        self._closed = True

    def terminate(self) -> None:
        """Stop the workers at once; unfinished work is lost."""
        self.close()
        for actor, _ in self._actor_pool:
            ember.kill(actor)

    def join(self) -> None:
        """Wait for the workers to exit; call :meth:`close` first.

        Raises:
            ValueError: If the pool is still running.
        """
        if not self._closed:
            raise ValueError("Pool is still running")
        if self._stop_refs:
            ember.wait(self._stop_refs, num_returns=len(self._stop_refs))
        self._stop_refs = []

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()
