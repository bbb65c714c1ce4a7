"""Custom serializers for types ember cannot pickle, and a report of what fails.

``register_serializer(cls, serializer=..., deserializer=...)`` makes every value
this process sends (task arguments, returns, ``put``) store ``serializer(obj)``
for each instance of ``cls`` and rebuild it with ``deserializer``. The
deserializer travels inside the pickle stream, so receivers need not register
anything. ``inspect_serializability`` finds the members of an object that
cannot be pickled.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import cloudpickle

from ember.runtime import serialization


def _rebuild(deserializer: Callable[[Any], Any], state: Any) -> Any:
    return deserializer(state)


def register_serializer(
    cls: type, *, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
) -> None:
    """Serialize instances of ``cls`` as ``serializer(obj)``, rebuilt by ``deserializer``.

    Applies to what this process serializes from now on (exact type, not subclasses).
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_serializer() expected a class, got {cls!r}")
    if not callable(serializer) or not callable(deserializer):
        raise TypeError("serializer and deserializer must be callables")

    def reduce(obj: Any) -> tuple[Any, tuple[Any, Any]]:
        return _rebuild, (deserializer, serializer(obj))

    serialization.custom_reducers[cls] = reduce


def deregister_serializer(cls: type) -> None:
    """Undo :func:`register_serializer` for ``cls`` (no error if none was registered)."""
    serialization.custom_reducers.pop(cls, None)


class FailureTuple(NamedTuple):
    """One member that could not be pickled: the object, its name, its parent."""

    obj: Any
    name: str
    parent: Any

    def __hash__(self) -> int:  # members may be unhashable (dicts, lists)
        return hash((id(self.obj), self.name, id(self.parent)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FailureTuple) and hash(self) == hash(other)

    def __repr__(self) -> str:
        return f"FailTuple({self.name} [obj={self.obj}, parent={self.parent}])"


def _picklable(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj, protocol=5, buffer_callback=lambda b: None)
    except Exception:  # noqa: BLE001 - any failure means "not picklable"
        return False
    return True


def _members(obj: Any) -> list[tuple[str, Any]]:
    if inspect.isfunction(obj):
        closure = inspect.getclosurevars(obj)
        return [*closure.nonlocals.items(), *closure.globals.items()]
    if isinstance(obj, dict):
        return [(repr(k), v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    try:
        return list(vars(obj).items())
    except TypeError:
        return []


def inspect_serializability(
    base_obj: Any, name: str | None = None, depth: int = 3, print_file: Any = None
) -> tuple[bool, set[FailureTuple]]:
    """Whether ``base_obj`` pickles, and the innermost members that do not.

    Prints a short report (to ``print_file``, default stdout) and returns
    ``(ok, failures)``; ``depth`` bounds how far into members it looks.
    """
    out = print_file if print_file is not None else sys.stdout
    label = name or getattr(base_obj, "__name__", None) or repr(base_obj)
    failures: set[FailureTuple] = set()
    if _picklable(base_obj):
        print(f"Serializing {label!r}... OK", file=out)
        return True, failures
    print(f"!!! FAIL serialization of {label!r}", file=out)
    _walk(base_obj, label, depth, failures, out, "    ")
    if not failures:  # no member is to blame: the object itself is
        failures.add(FailureTuple(base_obj, label, None))
    return False, failures


def _walk(
    obj: Any, label: str, depth: int, failures: set[FailureTuple], out: Any, pad: str
) -> None:
    if depth <= 0:
        return
    for member_name, member in _members(obj):
        if _picklable(member):
            continue
        print(
            f"{pad}- {member_name}: {type(member).__name__} does not serialize",
            file=out,
        )
        before = len(failures)
        _walk(member, member_name, depth - 1, failures, out, pad + "    ")
        if len(failures) == before:
            failures.add(FailureTuple(member, member_name, obj))
