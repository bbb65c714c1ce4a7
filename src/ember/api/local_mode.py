"""``init(local_mode=True)``: the Runtime that runs tasks and actors serially in the driver.

For debugging: breakpoints and ``pdb`` work inside tasks. Each ``.remote()``
runs the task (or actor method) to completion in the calling thread before it
returns (``api/local_executor.py``). Arguments and results still go through
serialization, so unpicklable values fail the same way (arguments at the call
site) and a task cannot mutate its caller's objects; top-level ObjectRef
arguments are replaced by their values. Objects live in
``api/local_objects.LocalStore``; actors are instances in this process, kept
here with what a restart needs; named actors, namespaces, ``kill`` and
``exit_actor`` behave as on a cluster.

Ray 2.60 removed ``local_mode``; ember keeps it as an extension.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ember import exceptions as exc_mod
from ember.api import ignored_options
from ember.api.actor import ActorHandle
from ember.api.call_builder import resources_of
from ember.api.local_executor import JOB_ID, ActorExit, LocalExecutor, context, copy
from ember.api.local_objects import LocalStore, activate
from ember.api.local_placement import LocalPlacementGroups
from ember.api.runtime import ActorHandleLike
from ember.common.ids import random_id
from ember.common.resources import (
    default_memory_bytes,
    default_object_store_bytes,
    detect_cpus,
    detect_gpus,
)
from ember.runtime.object_ref import ObjectRef
from ember.runtime_env import runtime_env as renv


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
        self.job_id = JOB_ID
        self.node_id = random_id(16)
        self.worker_id = random_id(16)
        self.node_ip = "127.0.0.1"
        self.store = LocalStore()
        self.executor = LocalExecutor(self.store)
        self.placement_groups = LocalPlacementGroups(namespace)
        self._resources = dict(resources or {"CPU": float(os.cpu_count() or 1)})
        self._env_vars = dict(env_vars)
        self._saved_env = {k: os.environ.get(k) for k in env_vars}
        self._actors: dict[bytes, _Actor] = {}
        self._named: dict[tuple[str, str], bytes] = {}
        self._lock = self.executor.lock
        os.environ.update(env_vars)
        activate(self.store)

    # values -------------------------------------------------------------------------
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

    def _env(self, options: dict[str, Any]) -> dict[str, str]:
        renv_own = options.get("runtime_env") or {}
        built = sorted(k for k in renv.BUILT_FIELDS if renv_own.get(k))
        if built:
            ignored_options.warn_ignored(
                f"runtime_env {built} of a task or actor",
                "local_mode runs every task in the driver's own Python and folder",
            )
        own = renv_own.get("env_vars") or {}
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
        args, kwargs = copy((args, kwargs))  # unpicklable: fails here, as on a cluster
        ctx = context(name, b"", resources_of(options, 1.0), self._env(options))
        max_retries = options.get("max_retries")
        retries = 3 if max_retries is None else int(max_retries)
        retry_on = options.get("retry_exceptions", False)
        out, _ = self.executor.call(
            function, ctx, args, kwargs, num_returns, retries, retry_on
        )
        return out

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
        args, kwargs = copy((args, kwargs))  # unpicklable: fails here, as on a cluster
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
        ctx = context(f"{state.cls.__name__}.__init__", actor_id, {}, state.env)
        args, kwargs = copy((state.args, state.kwargs))
        state.instance, state.death = self.executor.construct(
            state.cls, ctx, args, kwargs
        )

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
        args, kwargs = copy((args, kwargs))  # unpicklable: fails here, as on a cluster
        num_returns = options.get("num_returns", meta.get("num_returns", 1))
        state = self._actors.get(handle._actor_id_bytes)
        if state is None or state.death is not None:
            death = (
                state.death
                if state is not None and state.death is not None
                else _died("The actor was killed.")
            )
            return self.executor.failed(death, num_returns)
        ctx = context(
            f"{handle._class_name}.{method}",
            handle._actor_id_bytes,
            state.resources,
            state.env,
        )
        fn = getattr(state.instance, method, None) or _BUILTIN_METHODS[method]
        out, exc = self.executor.call(fn, ctx, args, kwargs, num_returns)
        if isinstance(exc, ActorExit):
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
        state.death = _died(why, state.cls.__name__, state.name, state.namespace)
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
                "Labels": {"ray.io/node-id": self.node_id.hex()},
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
        self.executor.close()
        for key, old in self._saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def local_mode_resources(
    num_cpus: int | None, num_gpus: int | None, resources: dict[str, float] | None
) -> dict[str, float]:
    """The resources local mode reports: init()'s, else this machine's."""
    totals = {"CPU": float(detect_cpus() if num_cpus is None else num_cpus)}
    gpus = detect_gpus() if num_gpus is None else num_gpus
    if gpus:
        totals["GPU"] = float(gpus)
    store = default_object_store_bytes()
    totals["memory"] = float(default_memory_bytes(store))
    totals["object_store_memory"] = float(store)
    totals.update({k: float(v) for k, v in (resources or {}).items()})
    totals["node:127.0.0.1"] = 1.0
    totals["node:__internal_head__"] = 1.0
    return totals


def _terminate() -> None:
    raise SystemExit(0)  # an intended exit, as exit_actor()


#: the methods every actor has (``api/actor.BUILTIN_METHODS``)
_BUILTIN_METHODS: dict[str, Any] = {
    "__ray_ready__": lambda: True,
    "__ray_terminate__": _terminate,
}


def _died(
    why: str, class_name: str = "", name: str = "", namespace: str = ""
) -> exc_mod.ActorDiedError:
    return exc_mod.ActorDiedError(
        exc_mod.ActorDiedErrorContext(
            error_message=why, class_name=class_name, name=name, ray_namespace=namespace
        )
    )
