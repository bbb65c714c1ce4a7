"""``init(local_mode=True)``: run tasks and actors serially in the driver process.

For debugging: breakpoints and ``pdb`` work inside tasks.  Arguments and
results still go through serialization (so unpicklable values fail the same
way) and errors are wrapped as on a cluster (``TaskError`` that is also the
user's exception class).
"""

from __future__ import annotations

import inspect
import os
import traceback
from typing import Any

from ember import exceptions as exc_mod
from ember.common.ids import new_task_id, object_id_for
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import deserialize, serialize


class _Stored:
    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error


class LocalActorHandle:
    """An actor living in the driver process."""

    def __init__(
        self,
        runtime: LocalModeRuntime,
        instance: Any,
        class_name: str,
        meta: dict[str, Any],
    ) -> None:
        self._runtime = runtime
        self._instance = instance
        self._class_name = class_name
        self._meta = meta
        self._dead = False

    def __getattr__(self, name: str) -> Any:
        meta = self.__dict__.get("_meta", {})
        if name not in meta:
            raise AttributeError(
                f"'{self.__dict__.get('_class_name')}' actor has no method '{name}'"
            )
        from ember.api.actor import ActorMethod

        return ActorMethod(self, name, meta[name])  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, local)"


class LocalModeRuntime:
    """Serial, in-process execution with cluster semantics for values and errors."""

    def __init__(self, namespace: str, env_vars: dict[str, str]) -> None:
        self.namespace = namespace
        self.objects: dict[bytes, _Stored] = {}
        self.named: dict[tuple[str, str], LocalActorHandle] = {}
        self.resources = {"CPU": float(os.cpu_count() or 1)}
        os.environ.update(env_vars)

    def _copy(self, value: Any) -> Any:
        ser = serialize(value)
        return deserialize(
            ser.data, [bytes(memoryview(b).cast("B")) for b in ser.buffers]
        )

    def _store(
        self, value: Any = None, error: BaseException | None = None
    ) -> ObjectRef:
        oid = object_id_for(new_task_id(), 1)
        self.objects[oid] = _Stored(value, error)
        return ObjectRef(oid, None, _register=False)

    def put(self, value: Any) -> ObjectRef:
        return self._store(self._copy(value))

    def get(self, refs: list[ObjectRef]) -> list[Any]:
        out = []
        for r in refs:
            s = self.objects.get(r.binary())
            if s is None:
                raise exc_mod.ObjectLostError(
                    r.hex(), "", "", f"object {r.hex()} is unknown"
                )
            if s.error is not None:
                raise s.error
            out.append(s.value)
        return out

    def _resolve_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a = [self.get([v])[0] if isinstance(v, ObjectRef) else v for v in args]
        k = {
            key: self.get([v])[0] if isinstance(v, ObjectRef) else v
            for key, v in kwargs.items()
        }
        return self._copy((a, k))

    def _call(
        self,
        fn: Any,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
    ) -> Any:
        try:
            a, k = self._resolve_args(args, kwargs)
            result = fn(*a, **k)
            if inspect.iscoroutine(result):
                import asyncio

                result = asyncio.run(result)
        except Exception as exc:  # noqa: BLE001  (user code or user values)
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            err = exc_mod.TaskError(name, tb, exc).as_instanceof_cause()
            n = (
                1
                if num_returns in ("streaming", "dynamic")
                else max(int(num_returns), 1)
            )
            refs = [self._store(error=err) for _ in range(n)]
            return refs[0] if n == 1 else refs
        if num_returns in ("streaming", "dynamic"):
            return iter([self._store(self._copy(v)) for v in result])
        n = int(num_returns)
        if n == 0:
            return None
        if n == 1:
            return self._store(self._copy(result))
        return [self._store(self._copy(v)) for v in result]

    def run_task(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
        options: dict[str, Any],
    ) -> Any:
        return self._call(
            fn, getattr(fn, "__name__", "task"), args, kwargs, num_returns
        )

    def create_actor(
        self,
        cls: type,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        meta: dict[str, Any],
    ) -> LocalActorHandle:
        name = options.get("name")
        ns = options.get("namespace") or self.namespace
        if name and (ns, name) in self.named:
            if options.get("get_if_exists"):
                return self.named[(ns, name)]
            raise ValueError(f"The name {name!r} (namespace={ns!r}) is already taken.")
        a, k = self._resolve_args(args, kwargs)
        handle = LocalActorHandle(self, cls(*a, **k), cls.__name__, meta)
        if name:
            self.named[(ns, name)] = handle
        return handle

    def call_actor(
        self,
        handle: Any,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_returns: Any,
    ) -> Any:
        if handle._dead:
            return self._store(error=exc_mod.ActorDiedError("The actor was killed."))
        fn = getattr(handle._instance, method)
        return self._call(
            fn, f"{handle._class_name}.{method}", args, kwargs, num_returns
        )

    def get_actor(self, name: str, namespace: str | None) -> Any:
        h = self.named.get((namespace or self.namespace, name))
        if h is None:
            raise ValueError(f"Failed to look up actor with name {name!r}.")
        return h

    def kill(self, handle: Any) -> None:
        handle._dead = True
        for key, h in list(self.named.items()):
            if h is handle:
                del self.named[key]

    def node_record(self) -> dict[str, Any]:
        return {
            "NodeID": "00" * 16,
            "Alive": True,
            "alive": True,
            "NodeManagerAddress": "127.0.0.1",
            "Resources": dict(self.resources),
        }
