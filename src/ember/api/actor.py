"""Actors: ActorClass (``@remote`` classes), ActorHandle and ActorMethod."""

from __future__ import annotations

import inspect
from typing import Any

from ember.api import options as opt
from ember.api.runtime_access import (
    build_call,
    env_vars_of,
    export,
    local_mode,
    placed_resources,
    resources_of,
    strategy_of,
    worker,
)
from ember.common.ids import ActorID, random_id
from ember.protocol.messages import ActorSpec, CreateActorRequest, ObjRef
from ember.rpc.errors import RemoteError
from ember.runtime import current
from ember.runtime.actor_submitter import ActorCall
from ember.runtime.object_ref import ObjectRefGenerator
from ember.runtime.serialization import args_blob


def method(*args: Any, **kwargs: Any) -> Any:
    """Annotate an actor method: ``@ember.method(num_returns=2)``."""
    valid = {
        "num_returns",
        "concurrency_group",
        "max_task_retries",
        "retry_exceptions",
        "_generator_backpressure_num_objects",
        "enable_task_events",
        "tensor_transport",
    }
    if args and callable(args[0]) and len(args) == 1 and not kwargs:
        return args[0]
    bad = set(kwargs) - valid
    if args or bad:
        raise ValueError(
            f"@ember.method only accepts keyword arguments {sorted(valid)}; got "
            f"{sorted(bad) or args}"
        )

    def decorate(fn: Any) -> Any:
        fn.__ember_method_options__ = dict(kwargs)
        return fn

    return decorate


def _method_meta(cls: type) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name, fn in inspect.getmembers(cls, predicate=lambda m: callable(m)):
        if name.startswith("__") and name not in ("__call__",):
            continue
        o = getattr(fn, "__ember_method_options__", {})
        is_gen = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
        meta[name] = {
            "num_returns": o.get("num_returns", "streaming" if is_gen else 1),
            "max_task_retries": o.get("max_task_retries"),
            "is_async": inspect.iscoroutinefunction(fn),
        }
    return meta


class ActorClass:
    """A class whose instances are actors: ``Cls.remote(...)`` returns an ActorHandle."""

    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        opt.validate_actor_options(options, in_options=False)
        self._cls = cls
        self._options = options
        self._name = cls.__name__
        self._meta = _method_meta(cls)
        self._export_cache: dict[int, bytes] = {}
        self.__doc__ = cls.__doc__
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self._name}()', use "
            f"'{self._name}.remote()'."
        )

    def options(self, **actor_options: Any) -> _BoundActorClass:
        """Override options for the actors created through the returned object."""
        opt.validate_actor_options(actor_options, in_options=True)
        return _BoundActorClass(self, opt.update_options(self._options, actor_options))

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        """Create the actor; return a handle to it at once."""
        return self._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "DAG building with .bind() is not supported by ember yet"
        )

    def _remote(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> ActorHandle:
        lm = local_mode()
        if lm is not None:
            return lm.create_actor(self._cls, args, kwargs, options, self._meta)
        cw = worker()
        key = export(cw, self._cls, self._export_cache)
        is_async = any(m["is_async"] for m in self._meta.values())
        max_conc = options.get("max_concurrency")
        if max_conc is None:
            max_conc = 1000 if is_async else 1
        ser, refs = args_blob(args, kwargs, lambda v: type(v).__name__ == "ObjectRef")
        namespace = options.get("namespace") or cw.namespace
        spec = ActorSpec(
            actor_id=random_id(),
            job_id=cw.job_id,
            class_key=key,
            class_name=self._name,
            args=ser.data,
            arg_bufs=[bytes(memoryview(b).cast("B")) for b in ser.buffers],
            ref_args=[ObjRef(oid=r._id, owner=r._owner or cw.address) for r in refs],
            resources=placed_resources(
                resources_of(options, 0.0), strategy_of(options)
            ),
            name=options.get("name") or "",
            namespace=namespace,
            detached=options.get("lifetime") == "detached",
            max_restarts=int(options.get("max_restarts") or 0),
            max_task_retries=int(options.get("max_task_retries") or 0),
            max_concurrency=int(max_conc),
            is_async=is_async,
            env_vars=env_vars_of(cw, options),
            owner=cw.address,
            methods=self._meta,
            scheduling=strategy_of(options),
        )
        # Keep argument refs (and refs inside arguments) alive for the actor's life.
        cw.refs.add_submitted(
            [r._id for r in refs] + [r._id for r in ser.contained],
            [r._owner for r in refs] + [r._owner for r in ser.contained],
        )
        try:
            info, _ = cw.run(
                cw.control.call(
                    "control.create_actor",
                    CreateActorRequest(
                        spec=spec, get_if_exists=bool(options.get("get_if_exists"))
                    ),
                )
            )
        except RemoteError as err:
            if err.is_a(ValueError):
                raise ValueError(err.remote_message) from None
            raise
        created = info.spec is None or info.spec.actor_id == spec.actor_id
        spec = info.spec or spec
        handle = ActorHandle(
            spec.actor_id, spec.class_name, spec.methods, spec.max_task_retries
        )
        if created and not spec.detached and not spec.name:
            # The actor dies with its last handle here, unless a handle escaped
            # (was pickled into a task, an actor or an object): then it lives
            # until its job ends, as we cannot see the copies.
            cw.actor_handles.mark_collectable(spec.actor_id)
        return handle


class _BoundActorClass:
    def __init__(self, ac: ActorClass, options: dict[str, Any]) -> None:
        self._ac = ac
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._ac._remote(args, kwargs, self._options)

    def options(self, **actor_options: Any) -> _BoundActorClass:
        opt.validate_actor_options(actor_options, in_options=True)
        return _BoundActorClass(
            self._ac, opt.update_options(self._options, actor_options)
        )


class ActorHandle:
    """A handle to an actor; ``handle.method.remote(...)`` calls it. Picklable."""

    def __init__(
        self,
        actor_id: bytes,
        class_name: str,
        methods: dict[str, Any],
        max_task_retries: int,
    ) -> None:
        self._actor_id_bytes = actor_id
        self._class_name = class_name
        self._methods = methods
        self._max_task_retries = max_task_retries
        cw = current.worker_or_none()
        self._counted = cw is not None
        if cw is not None:
            cw.actor_handles.add(actor_id)

    def __del__(self) -> None:
        if self.__dict__.get("_counted"):
            cw = current.worker_or_none()
            if cw is not None:
                cw.actor_handles.remove(self._actor_id_bytes)

    @property
    def _actor_id(self) -> ActorID:
        return ActorID(self._actor_id_bytes)

    def __getattr__(self, name: str) -> ActorMethod:
        methods = self.__dict__.get("_methods", {})
        if name in methods:
            return ActorMethod(self, name, methods[name])
        raise AttributeError(
            f"'{self.__dict__.get('_class_name', 'Actor')}' actor has no "
            f"method '{name}'"
        )

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id_bytes.hex()})"

    def __hash__(self) -> int:
        return hash(self._actor_id_bytes)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ActorHandle)
            and other._actor_id_bytes == self._actor_id_bytes
        )

    def __reduce__(self) -> tuple[Any, ...]:
        cw = current.worker_or_none()
        if cw is not None:
            cw.actor_handles.escaped(self._actor_id_bytes)
        return (
            ActorHandle,
            (
                self._actor_id_bytes,
                self._class_name,
                self._methods,
                self._max_task_retries,
            ),
        )


class ActorMethod:
    """One method of an actor: ``.remote(...)`` and ``.options(num_returns=...)``."""

    def __init__(
        self,
        handle: ActorHandle,
        name: str,
        meta: dict[str, Any],
        options: dict[str, Any] | None = None,
    ) -> None:
        self._handle = handle
        self._name = name
        self._meta = meta
        self._options = options or {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actor methods cannot be called directly. Instead of running "
            f"'object.{self._name}()', try 'object.{self._name}.remote()'."
        )

    def options(self, **options: Any) -> ActorMethod:
        bad = set(options) - {
            "num_returns",
            "name",
            "max_task_retries",
            "retry_exceptions",
            "concurrency_group",
            "enable_task_events",
        }
        if bad:
            raise ValueError(
                f"Invalid option keyword(s) {sorted(bad)} for actor methods."
            )
        return ActorMethod(
            self._handle, self._name, self._meta, {**self._options, **options}
        )

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        h = self._handle
        lm = local_mode()
        if lm is not None:
            return lm.call_actor(
                h,
                self._name,
                args,
                kwargs,
                self._options.get("num_returns", self._meta["num_returns"]),
            )
        cw = current.worker_or_none() or worker()
        num_returns = self._options.get("num_returns", self._meta.get("num_returns", 1))
        streaming = num_returns in ("streaming", "dynamic")
        n = 1 if streaming else int(num_returns)
        spec, frames, return_oids, refs, arg_oids = build_call(
            cw, f"{h._class_name}.{self._name}", args, kwargs, n, streaming
        )
        spec.actor_id = h._actor_id_bytes
        spec.method = self._name
        retries = self._options.get(
            "max_task_retries", self._meta.get("max_task_retries")
        )
        if retries is None:
            retries = h._max_task_retries
        call = ActorCall(spec, frames, return_oids, arg_oids, int(retries))
        if not cw.actor_calls.actors.get(h._actor_id_bytes):
            cw.actor_calls.state(h._actor_id_bytes, h._class_name)
        if not cw.actor_calls.try_send_now(call):
            cw.actor_calls.hand_to_loop(call)
        if streaming:
            return ObjectRefGenerator(spec.task_id, cw.address)
        if n == 0:
            return None
        if n == 1:
            return refs[0]
        return refs
