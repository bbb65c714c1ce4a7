"""Actors: ActorClass (``@remote`` classes), ActorHandle and ActorMethod."""

from __future__ import annotations

import inspect
import types
from typing import Any

from ember.api import call_shape, options as opt
from ember.api.bundle_fit import check_request_fits
from ember.api.runtime_access import runtime
from ember.common.ids import ActorID
from ember.runtime import current


def method(*args: Any, **kwargs: Any) -> Any:
    """Annotate an actor method: ``@ember.method(num_returns=2)``."""
    if args and callable(args[0]) and len(args) == 1 and not kwargs:
        return args[0]
    if args:
        raise ValueError(
            "@ember.method only accepts keyword arguments, e.g. "
            f"@ember.method(num_returns=2); got {args}"
        )
    opt.validate_method_options(kwargs, "@ember.method")

    def decorate(fn: Any) -> Any:
        fn.__ember_method_options__ = dict(kwargs)
        return fn

    return decorate


#: the methods Ray gives every actor: ``__ray_ready__`` (True once the actor is
#: built) and ``__ray_terminate__`` (an intended exit, as ``exit_actor()``)
BUILTIN_METHODS = ("__ray_ready__", "__ray_terminate__")


class UndefinedConcurrencyGroupError(ValueError, AssertionError):
    """A method names a concurrency group its actor class does not define.

    Raised when the actor is created, as Ray does (Ray raises a bare
    ``AssertionError`` there; this is one, and a ``ValueError`` too).
    """


def _undefined_group(meta: dict[str, Any], options: dict[str, Any]) -> str | None:
    """The message for a method whose concurrency group the class lacks, or None."""
    groups = set(opt.concurrency_groups_of(options))
    for name, m in sorted(meta.items()):
        group = m.get("concurrency_group")
        if group and group not in groups:
            defined = ", ".join(repr(g) for g in sorted(groups)) or "none"
            return (
                f"The method {name!r} is in the concurrency group {group!r}, which the "
                f"actor class does not define (its concurrency_groups: {defined}). Add "
                f"it to @remote(concurrency_groups={{...}})."
            )
    return None


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
            "shape": call_shape.of_method(cls, name),
            "concurrency_group": o.get("concurrency_group"),
            # an async generator makes an async actor too, as in Ray
            "is_async": inspect.iscoroutinefunction(fn)
            or inspect.isasyncgenfunction(fn),
        }
    for name in BUILTIN_METHODS:  # every actor has them (worker/calls.py runs them)
        meta.setdefault(
            name,
            {
                "num_returns": 1,
                "max_task_retries": None,
                "is_async": False,
                "concurrency_group": None,
            },
        )
    return meta


class ActorClass:
    """A class whose instances are actors: ``Cls.remote(...)`` returns an ActorHandle."""

    def __class_getitem__(cls, item: Any) -> types.GenericAlias:
        """``ActorClass[Counter]`` in annotations, as Ray's generic class."""
        return types.GenericAlias(cls, item)

    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        opt.validate_actor_options(options, in_options=False)
        self._cls = cls
        self._options = options
        self._name = cls.__name__
        self._meta = _method_meta(cls)
        self._shape = call_shape.of_class(cls)
        self._export_cache: dict[int, bytes] = {}
        #: raised at creation, as Ray does (not at decoration)
        self._undefined_group = _undefined_group(self._meta, options)
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
        """A lazy actor creation for a DAG (``ember.dag``); a new actor per ``execute()``."""
        from ember.dag.class_node import ClassNode

        return ClassNode(self, args, kwargs, dict(self._options), cls=self._cls)

    def _remote(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> ActorHandle:
        if self._undefined_group is not None:
            raise UndefinedConcurrencyGroupError(self._undefined_group)
        if self._shape is not None:
            self._shape.check(args, kwargs)
        check_request_fits(options, self._name, actor=True)
        handle: ActorHandle = runtime().create_actor(
            self._cls, self._export_cache, self._meta, args, kwargs, options
        )
        return handle


class _BoundActorClass:
    def __init__(self, ac: ActorClass, options: dict[str, Any]) -> None:
        self._ac = ac
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._ac._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> Any:
        """A lazy actor creation with these options, for a DAG (``ember.dag``)."""
        from ember.dag.class_node import ClassNode

        return ClassNode(self, args, kwargs, dict(self._options), cls=self._ac._cls)

    def options(self, **actor_options: Any) -> _BoundActorClass:
        opt.validate_actor_options(actor_options, in_options=True)
        return _BoundActorClass(
            self._ac, opt.update_options(self._options, actor_options)
        )


class ActorHandle:
    """A handle to an actor; ``handle.method.remote(...)`` calls it. Picklable."""

    def __class_getitem__(cls, item: Any) -> types.GenericAlias:
        """``ActorHandle[Counter]`` in annotations, as Ray's generic handle."""
        return types.GenericAlias(cls, item)

    def __init__(
        self,
        actor_id: bytes,
        class_name: str,
        methods: dict[str, Any],
        max_task_retries: int,
        counted: bool = True,
    ) -> None:
        self._actor_id_bytes = actor_id
        self._class_name = class_name
        self._methods = methods
        self._max_task_retries = max_task_retries
        # counted: one of the handles that keep the actor alive (the creator's
        # and copies of it); get_actor's are not (runtime/actor_handles.py)
        cw = current.worker_or_none() if counted else None
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
        cw = current.worker_or_none() if self.__dict__.get("_counted") else None
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
        opt.validate_method_options(options, "actor methods")
        return ActorMethod(
            self._handle, self._name, self._meta, {**self._options, **options}
        )

    def bind(self, *args: Any, **kwargs: Any) -> Any:
        """A lazy call of this method for a DAG (``ember.dag``); a tuple of nodes for several returns."""
        from ember.dag.class_node import method_nodes

        h = self._handle
        index = h.__dict__.get("_dag_bind_index", 0)
        h.__dict__["_dag_bind_index"] = index + 1
        num_returns = self._options.get("num_returns", self._meta.get("num_returns"))
        return method_nodes(
            h, self._name, args, kwargs, dict(self._options), num_returns, index
        )

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Call the method; return its ObjectRef(s) (or an ObjectRefGenerator)."""
        shape = self._meta.get("shape")
        if shape is not None and (kwargs or not shape[0] <= len(args) <= shape[1]):
            call_shape.check_wire(shape, args, kwargs)
        return runtime().call_actor(
            self._handle, self._name, self._meta, self._options, args, kwargs
        )
