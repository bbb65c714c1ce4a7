"""Running user code in local mode: context, arguments, coroutines, returns, errors, retries.

One ``LocalExecutor`` per local-mode session. ``call`` runs a task or actor
method to completion in the calling thread, under one re-entrant lock (a task
may call ``.remote()`` itself), with a ``TaskContext`` set so that
``get_runtime_context()`` answers as in a worker, and the task's env vars in
``os.environ``. Returns and errors go to the ``LocalStore``, wrapped as a
cluster wraps them (``TaskError`` that is also the user's exception class).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import traceback
from typing import Any

from ember import exceptions as exc_mod
from ember.api.local_objects import LocalRefGenerator, LocalStore
from ember.common.ids import new_task_id
from ember.runtime import task_context
from ember.runtime.dynamic_generator import DynamicObjectRefGenerator
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import deserialize, serialize

JOB_ID = b"\x00\x00\x00\x01"


class ActorExit(exc_mod.ActorDiedError):
    """The error of the call in which an actor called ``exit_actor()``."""


def copy(value: Any) -> Any:
    """A deep copy through pickling (raises TypeError for what cannot be pickled)."""
    ser = serialize(value)
    return deserialize(ser.data, [bytes(memoryview(b).cast("B")) for b in ser.buffers])


def context(
    name: str, actor_id: bytes, resources: dict[str, float], env: dict[str, str]
) -> task_context.TaskContext:
    return task_context.TaskContext(
        task_id=new_task_id(),
        job_id=JOB_ID,
        name=name,
        actor_id=actor_id,
        resources=resources,
        extra={"runtime_env": {"env_vars": env}},
    )


def task_error(name: str, exc: Exception) -> BaseException:
    """What ``get`` raises for ``exc`` raised by task ``name``."""
    if isinstance(exc, exc_mod.EmberError) and not isinstance(exc, exc_mod.TaskError):
        return exc  # a system error (e.g. ActorDiedError of a dependency)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return exc_mod.TaskError(name, tb, exc).as_instanceof_cause()


class LocalExecutor:
    """Runs tasks, actor constructors and actor methods serially in this process."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def resolve_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Top-level ObjectRef arguments replaced by their values (fresh copies)."""
        value = self.store.value
        a = [value(v) if isinstance(v, ObjectRef) else v for v in args]
        k = {
            key: value(v) if isinstance(v, ObjectRef) else v
            for key, v in kwargs.items()
        }
        return a, k

    def run_coroutine(self, coro: Any) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.new_event_loop()
        if not loop.is_running() and not _loop_running_here():
            return loop.run_until_complete(coro)
        # A sync call made from inside an async method, or from the user's own
        # event loop (``asyncio.run``): run on a loop of its own.
        out: list[Any] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                out.append(asyncio.run(coro))
            except BaseException as exc:  # noqa: BLE001  (re-raised below)
                errors.append(exc)

        t = threading.Thread(target=run, name="ember-local-async")
        t.start()
        t.join()
        if errors:
            raise errors[0]
        return out[0]

    def construct(
        self,
        cls: type,
        ctx: task_context.TaskContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Any, BaseException | None]:
        """An instance of ``cls``, or the error its creation raised."""
        with self.lock, environ(ctx.extra["runtime_env"]["env_vars"]):
            prev = task_context.get()
            task_context.set_current(ctx)
            try:
                a, k = self.resolve_args(args, kwargs)
                return cls(*a, **k), None
            except Exception as exc:  # noqa: BLE001  (the constructor's error)
                err = task_error(ctx.name, exc)
                if isinstance(err, exc_mod.TaskError):
                    err = exc_mod.ActorDiedError.from_task_error(err)
                return None, err
            finally:
                task_context.set_current(prev)

    def call(
        self,
        fn: Any,
        ctx: task_context.TaskContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
        retries: int = 0,
        retry_on: Any = False,
    ) -> tuple[Any, Exception | None]:
        """Run ``fn`` once (more while ``retry_on`` matches its error and
        ``retries`` last, -1 = forever). Returns its ref(s), None or generator,
        and the exception of the last attempt (None if it succeeded)."""
        ctx.extra["function"] = fn  # get_task_function_name, current_actor
        with environ(ctx.extra["runtime_env"]["env_vars"]):
            while True:
                out, exc = self._call_once(fn, ctx, args, kwargs, num_returns)
                if exc is None or retries == 0 or not _retryable(exc, retry_on):
                    return out, exc
                retries -= 1 if retries > 0 else 0

    def _call_once(
        self,
        fn: Any,
        ctx: task_context.TaskContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
    ) -> tuple[Any, Exception | None]:
        store = self.store
        streaming = num_returns in ("streaming", "dynamic")
        n = 1 if streaming else int(num_returns)
        items: list[ObjectRef] = []
        with self.lock:
            prev = task_context.get()
            task_context.set_current(ctx)
            try:
                a, k = self.resolve_args(args, kwargs)
                result = fn(*a, **k)
                if inspect.iscoroutine(result):
                    result = self.run_coroutine(result)
                elif inspect.isasyncgen(result):
                    result = self.run_coroutine(_drain(result))
                if streaming:
                    for v in result:
                        items.append(store.add(v))
                    if num_returns == "dynamic":
                        return store.add(DynamicObjectRefGenerator(items)), None
                    return LocalRefGenerator(items, store.add(None)), None
                if n == 0:
                    return None, None
                if n == 1:
                    return store.add(result), None
                values = list(result)
                if len(values) != n:
                    raise ValueError(
                        f"Task returned {len(values)} objects, but num_returns={n}."
                    )
                return [store.add(v) for v in values], None
            except SystemExit as stop:
                if not ctx.actor_id:
                    raise  # sys.exit() in a task ends the program, as in a script
                exit_ = ActorExit(
                    exc_mod.ActorDiedErrorContext(
                        error_message="The actor exited by calling exit_actor()."
                    )
                )
                exit_.__cause__ = stop
                return self.failed(exit_, num_returns), exit_
            except Exception as exc:  # noqa: BLE001  (user code or user values)
                err = task_error(ctx.name, exc)
                if streaming:  # the error is the last item; the task completed
                    items.append(store.add(error=err))
                    if num_returns == "dynamic":
                        return store.add(DynamicObjectRefGenerator(items)), exc
                    return LocalRefGenerator(items, store.add(None)), exc
                return self.failed(err, num_returns), exc
            finally:
                task_context.set_current(prev)

    def failed(self, err: BaseException, num_returns: Any) -> Any:
        """What ``.remote()`` returns for a call that failed with ``err``."""
        if num_returns == "dynamic":
            return self.store.add(error=err)
        if num_returns == "streaming":  # the completed ref is the last item (Ray)
            completed = self.store.add(error=err)
            return LocalRefGenerator([completed], completed)
        n = int(num_returns)
        refs = [self.store.add(error=err) for _ in range(max(n, 1))]
        return None if n == 0 else refs[0] if n == 1 else refs

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()


def _retryable(exc: Exception, retry_on: Any) -> bool:
    if isinstance(retry_on, (list, tuple)):
        return isinstance(exc, tuple(retry_on))
    return bool(retry_on)


async def _drain(agen: Any) -> list[Any]:
    return [v async for v in agen]


class environ:
    """Set a task's env vars in ``os.environ`` while it runs (local mode shares it)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self._env.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: object) -> None:
        for k, old in self._saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _loop_running_here() -> bool:
    """Whether an event loop runs in this thread (the user's ``asyncio.run``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
