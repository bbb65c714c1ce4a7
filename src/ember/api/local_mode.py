"""``init(local_mode=True)``: the Runtime that runs tasks and actors serially in the driver.

For debugging: breakpoints and ``pdb`` work inside tasks. Each ``.remote()``
runs the task (or actor method) to completion in the calling thread before it
returns; one lock keeps calls from several threads serial. Arguments and
results still go through serialization (so unpicklable values fail the same
way and a task cannot mutate its caller's objects), top-level ObjectRef
arguments are replaced by their values, errors are wrapped as on a cluster
(``TaskError`` that is also the user's exception class), and the runtime
context (task id, actor id, assigned resources, env vars) is set while a task
runs.

Ray 2.60 removed ``local_mode``; ember keeps it as an extension.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from ember import exceptions as exc_mod
from ember.api.actor import ActorHandle
from ember.api.call_builder import resources_of
from ember.api.local_objects import (
    LocalRefGenerator,
    LocalStore,
    activate,
)
from ember.api.local_placement import LocalPlacementGroups
from ember.api.runtime import ActorHandleLike
from ember.common.ids import new_task_id, random_id
from ember.runtime import task_context
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import deserialize, serialize

_JOB_ID = b"\x00\x00\x00\x01"


@dataclass
class _Actor:
    """An actor instance living in the driver, and what a restart needs."""

    cls: type
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str
    namespace: str
    restarts_left: int
    meta: dict[str, Any]
    env: dict[str, str]
    max_task_retries: int
    resources: dict[str, float]
    instance: Any = None
    death: BaseException | None = None


class LocalModeRuntime:
    """Serial, in-process execution with cluster semantics for values and errors."""

    def __init__(
        self,
        namespace: str,
        env_vars: dict[str, str],
        resources: dict[str, float] | None = None,
    ) -> None:
        self.namespace = namespace
        self.job_id = _JOB_ID
        self.node_id = random_id(16)
        self.worker_id = random_id(16)
        self.node_ip = "127.0.0.1"
        self.store = LocalStore()
        self.placement_groups = LocalPlacementGroups(namespace)
        self._resources = dict(resources or {"CPU": float(os.cpu_count() or 1)})
        self._env_vars = dict(env_vars)
        self._saved_env = {k: os.environ.get(k) for k in env_vars}
        self._actors: dict[bytes, _Actor] = {}
        self._named: dict[tuple[str, str], bytes] = {}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        os.environ.update(env_vars)
        activate(self.store)

    # values -------------------------------------------------------------------------
    def _copy(self, value: Any) -> Any:
        ser = serialize(value)
        return deserialize(
            ser.data, [bytes(memoryview(b).cast("B")) for b in ser.buffers]
        )

    def get(self, refs: list[ObjectRef], timeout: float | None) -> list[Any]:
        value = self.store.value
        return [value(r) for r in refs]

    def put(self, value: Any) -> ObjectRef:
        return self.store.add(value)

    def wait(
        self,
        refs: list[ObjectRef],
        num_returns: int,
        timeout: float | None,
        fetch_local: bool,
    ) -> list[bool]:
        return [True] * len(refs)  # every task finished before .remote() returned

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        """Nothing to cancel: the task finished before ``.remote()`` returned."""

    # running user code ------------------------------------------------------------
    def _resolve_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = self.store.value
        a = [value(v) if isinstance(v, ObjectRef) else v for v in args]
        k = {
            key: value(v) if isinstance(v, ObjectRef) else v
            for key, v in kwargs.items()
        }
        return self._copy((a, k))

    def _run_coroutine(self, coro: Any) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.new_event_loop()
        if not loop.is_running():
            return loop.run_until_complete(coro)
        # A sync call made from inside an async method: run on a loop of its own.
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

    def _context(
        self, name: str, actor_id: bytes, resources: dict[str, float], env: Any
    ) -> task_context.TaskContext:
        return task_context.TaskContext(
            task_id=new_task_id(),
            job_id=_JOB_ID,
            name=name,
            actor_id=actor_id,
            resources=resources,
            extra={"runtime_env": {"env_vars": env}},
        )

    def _call(
        self,
        fn: Any,
        ctx: task_context.TaskContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
        retries: int = 0,
        retry_on: Any = False,
    ) -> Any:
        """Run ``fn`` once (more while ``retry_on`` matches its error and
        ``retries`` last, -1 = forever); return its ref(s), None or generator."""
        while True:
            out, exc = self._call_once(fn, ctx, args, kwargs, num_returns)
            if exc is None or retries == 0 or not _retryable(exc, retry_on):
                return out
            retries -= 1 if retries > 0 else 0

    def _call_once(
        self,
        fn: Any,
        ctx: task_context.TaskContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
    ) -> tuple[Any, Exception | None]:
        streaming = num_returns in ("streaming", "dynamic")
        n = 1 if streaming else int(num_returns)
        items: list[ObjectRef] = []
        with self._lock:
            prev = task_context.get()
            task_context.set_current(ctx)
            try:
                a, k = self._resolve_args(args, kwargs)
                result = fn(*a, **k)
                if inspect.iscoroutine(result):
                    result = self._run_coroutine(result)
                if streaming:
                    if inspect.isasyncgen(result):
                        result = self._run_coroutine(_drain(result))
                    for v in result:
                        items.append(self.store.add(v))
                    return LocalRefGenerator(items, self.store.add(None)), None
                if n == 0:
                    return None, None
                if n == 1:
                    return self.store.add(result), None
                values = list(result)
                if len(values) != n:
                    raise ValueError(
                        f"Task returned {len(values)} objects, but num_returns={n}."
                    )
                return [self.store.add(v) for v in values], None
            except SystemExit as stop:
                if not ctx.actor_id:
                    raise  # sys.exit() in a task ends the program, as in a script
                exit_ = _ActorExit("The actor exited by calling exit_actor().")
                refs = [self.store.add(error=exit_) for _ in range(max(n, 1))]
                out = None if n == 0 else refs[0] if n == 1 else refs
                exit_.__cause__ = stop
                return out, exit_
            except Exception as exc:  # noqa: BLE001  (user code or user values)
                err = self._task_error(ctx.name, exc)
                if streaming:
                    items.append(self.store.add(error=err))
                    return LocalRefGenerator(items, self.store.add(error=err)), exc
                refs = [self.store.add(error=err) for _ in range(max(n, 1))]
                return (None if n == 0 else refs[0] if n == 1 else refs), exc
            finally:
                task_context.set_current(prev)

    @staticmethod
    def _task_error(name: str, exc: Exception) -> BaseException:
        if isinstance(exc, exc_mod.EmberError) and not isinstance(
            exc, exc_mod.TaskError
        ):
            return exc  # a system error (e.g. ActorDiedError of a dependency)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return exc_mod.TaskError(name, tb, exc).as_instanceof_cause()

    def _env(self, options: dict[str, Any]) -> dict[str, str]:
        own = (options.get("runtime_env") or {}).get("env_vars") or {}
        return {**self._env_vars, **own}

    def submit_task(
        self,
        function: Any,
        export_cache: dict[int, bytes],
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        num_returns: int | str,
    ) -> Any:
        serialize((args, kwargs))  # an unpicklable argument fails here, as on a cluster
        ctx = self._context(name, b"", resources_of(options, 1.0), self._env(options))
        max_retries = options.get("max_retries")
        retries = 3 if max_retries is None else int(max_retries)
        retry_on = options.get("retry_exceptions", False)
        with _environ(ctx.extra["runtime_env"]["env_vars"]):
            return self._call(
                function, ctx, args, kwargs, num_returns, retries, retry_on
            )

    # actors -------------------------------------------------------------------------
    def create_actor(
        self,
        cls: type,
        export_cache: dict[int, bytes],
        meta: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> ActorHandle:
        serialize((args, kwargs))  # an unpicklable argument fails here, as on a cluster
        name = options.get("name") or ""
        ns = options.get("namespace") or self.namespace
        with self._lock:
            if name and (ns, name) in self._named:
                existing = self._named[(ns, name)]
                if options.get("get_if_exists"):
                    return self._handle(existing)
                raise ValueError(
                    f"The name {name!r} (namespace={ns!r}) is already taken."
                )
            actor_id = random_id(16)
            state = _Actor(
                cls,
                args,
                kwargs,
                name,
                ns,
                int(options.get("max_restarts") or 0),
                meta,
                self._env(options),
                int(options.get("max_task_retries") or 0),
                resources_of(options, 0.0),
            )
            self._actors[actor_id] = state
            if name:
                self._named[(ns, name)] = actor_id
            self._start(actor_id, state)
        return self._handle(actor_id)

    def _start(self, actor_id: bytes, state: _Actor) -> None:
        ctx = self._context(f"{state.cls.__name__}.__init__", actor_id, {}, state.env)
        state.instance = None
        state.death = None
        with self._lock, _environ(state.env):
            prev = task_context.get()
            task_context.set_current(ctx)
            try:
                a, k = self._resolve_args(state.args, state.kwargs)
                state.instance = state.cls(*a, **k)
            except Exception as exc:  # noqa: BLE001  (the constructor's error)
                err = self._task_error(ctx.name, exc)
                if isinstance(err, exc_mod.TaskError):
                    err = exc_mod.ActorDiedError.from_task_error(err)
                state.death = err
            finally:
                task_context.set_current(prev)

    def _handle(self, actor_id: bytes) -> ActorHandle:
        state = self._actors[actor_id]
        return ActorHandle(
            actor_id, state.cls.__name__, state.meta, state.max_task_retries
        )

    def call_actor(
        self,
        handle: ActorHandleLike,
        method: str,
        meta: dict[str, Any],
        options: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        serialize((args, kwargs))  # an unpicklable argument fails here, as on a cluster
        num_returns = options.get("num_returns", meta.get("num_returns", 1))
        state = self._actors.get(handle._actor_id_bytes)
        if state is None or state.death is not None:
            death = (
                state.death
                if state is not None and state.death is not None
                else exc_mod.ActorDiedError("The actor was killed.")
            )
            n = 1 if num_returns in ("streaming", "dynamic") else int(num_returns)
            refs = [self.store.add(error=death) for _ in range(max(n, 1))]
            return refs[0] if n <= 1 else refs
        ctx = self._context(
            f"{handle._class_name}.{method}",
            handle._actor_id_bytes,
            state.resources,
            state.env,
        )
        fn = getattr(state.instance, method)
        with _environ(state.env):
            out, exc = self._call_once(fn, ctx, args, kwargs, num_returns)
        if isinstance(exc, _ActorExit):
            self._mark_dead(state, "The actor exited by calling exit_actor().")
        return out

    def get_actor(self, name: str, namespace: str | None) -> ActorHandle:
        actor_id = self._named.get((namespace or self.namespace, name))
        if actor_id is None:
            raise ValueError(
                f"Failed to look up actor with name {name!r}. This could because 1. "
                "You are trying to look up a named actor you didn't create. 2. The "
                "named actor died. 3. You did not use a namespace matching the "
                "namespace of the actor."
            )
        return self._handle(actor_id)

    def kill(self, handle: ActorHandleLike, no_restart: bool) -> None:
        with self._lock:
            state = self._actors.get(handle._actor_id_bytes)
            if state is None:
                return
            if not no_restart and state.restarts_left != 0:
                state.restarts_left -= 1 if state.restarts_left > 0 else 0
                self._start(handle._actor_id_bytes, state)
                return
            self._mark_dead(state, "The actor was killed by ember.kill().")

    def _mark_dead(self, state: _Actor, why: str) -> None:
        state.instance = None
        state.death = exc_mod.ActorDiedError(why)
        if state.name:
            self._named.pop((state.namespace, state.name), None)

    def list_named_actors(self, all_namespaces: bool) -> list[Any]:
        if all_namespaces:
            return [{"name": n, "namespace": ns} for ns, n in self._named]
        return [n for ns, n in self._named if ns == self.namespace]

    # cluster information ----------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        return [
            {
                "NodeID": self.node_id.hex(),
                "Alive": True,
                "alive": True,
                "NodeManagerAddress": self.node_ip,
                "NodeManagerHostname": os.uname().nodename,
                "NodeManagerPort": 0,
                "ObjectManagerPort": 0,
                "NodeName": self.node_ip,
                "Resources": self.cluster_resources(),
                "Labels": {},
                "IsHeadNode": True,
                "DeathReason": 0,
                "DeathReasonMessage": "",
            }
        ]

    def cluster_resources(self) -> dict[str, float]:
        return dict(self._resources)

    def available_resources(self) -> dict[str, float]:
        return dict(self._resources)  # nothing runs while the driver asks

    def context_info(self) -> dict[str, Any]:
        return {
            "node_ip_address": self.node_ip,
            "address": "local_mode",
            "node_id": self.node_id.hex(),
            "webui_url": "",
        }

    def shutdown(self) -> None:
        activate(None)
        self._actors.clear()
        self._named.clear()
        self.store.clear()
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        for key, old in self._saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class _ActorExit(exc_mod.ActorDiedError):
    """The error of the call in which an actor called ``exit_actor()``."""


def _retryable(exc: Exception, retry_on: Any) -> bool:
    if isinstance(retry_on, (list, tuple)):
        return isinstance(exc, tuple(retry_on))
    return bool(retry_on)


async def _drain(agen: Any) -> list[Any]:
    return [v async for v in agen]


class _environ:
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
