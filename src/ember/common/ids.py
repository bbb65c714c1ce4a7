"""Identifiers: random or derived byte strings with a hex form.

Object ids are derived from the id of the task that creates them (task id + a
4-byte return index), so an owner can name a task's returns before it runs.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from typing import Self

TASK_ID_BYTES = 16
OBJECT_ID_BYTES = TASK_ID_BYTES + 4

_counter_lock = threading.Lock()
_counter = 0
_prefix = os.urandom(8)


def _refresh_after_fork() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8)
    _counter = 0


os.register_at_fork(after_in_child=_refresh_after_fork)


def new_task_id() -> bytes:
    """A unique task id: a per-process random prefix and a counter."""
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return _prefix + struct.pack(">Q", n)


def object_id_for(task_id: bytes, index: int) -> bytes:
    """The id of return ``index`` (1-based; 0 is reserved) of ``task_id``."""
    return task_id + struct.pack(">I", index)


def task_id_of(object_id: bytes) -> bytes:
    """The task that created ``object_id``."""
    return object_id[:TASK_ID_BYTES]


def random_id(nbytes: int = 16) -> bytes:
    """A random id (nodes, workers, actors, jobs, sessions)."""
    return os.urandom(nbytes)


class BaseID:
    """An id with Ray's accessors (``hex()``, ``binary()``, ``nil()``, ``from_hex``).

    ``SIZE`` is the length ember uses for this kind of id (Ray's lengths differ;
    nothing outside ember compares them). Ids of different kinds never compare
    equal, and ``str()`` is the same as ``repr()``, as in Ray.
    """

    __slots__ = ("_b",)
    SIZE = 16

    def __init__(self, id: bytes) -> None:
        if not isinstance(id, bytes):
            raise TypeError(f"Unsupported type: {type(id)}, expected bytes")
        self._b = id

    @classmethod
    def size(cls) -> int:
        return cls.SIZE

    @classmethod
    def from_random(cls) -> Self:
        return cls(os.urandom(cls.SIZE))

    @classmethod
    def from_binary(cls, id_bytes: bytes) -> Self:
        if not isinstance(id_bytes, bytes):
            raise TypeError(f"Unsupported type: {type(id_bytes)}, expected bytes")
        if len(id_bytes) != cls.SIZE:
            raise ValueError(
                f"ID string needs to have length {cls.SIZE}, got {len(id_bytes)}"
            )
        return cls(id_bytes)

    @classmethod
    def from_hex(cls, hex_id: str | bytes) -> Self:
        text = hex_id.decode() if isinstance(hex_id, bytes) else hex_id
        try:
            raw = bytes.fromhex(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{cls.__name__}: {text!r} is not a hex string") from exc
        return cls.from_binary(raw)

    @classmethod
    def nil(cls) -> Self:
        return cls(b"\xff" * cls.SIZE)

    def is_nil(self) -> bool:
        return self._b == b"\xff" * len(self._b)

    def binary(self) -> bytes:
        return self._b

    def hex(self) -> str:
        return self._b.hex()

    def redis_shard_hash(self) -> int:
        """A hash of the id that is stable across processes."""
        return int.from_bytes(hashlib.blake2b(self._b, digest_size=8).digest(), "big")

    def __hash__(self) -> int:
        return hash(self._b)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._b == self._b

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type, tuple[bytes]]:
        return (type(self), (self._b,))


class UniqueID(BaseID):
    """A generic unique id."""

    SIZE = 16


class JobID(BaseID):
    """A job (one driver's run): a 4-byte little-endian counter (the first is 1)."""

    SIZE = 4

    @classmethod
    def from_int(cls, value: int) -> JobID:
        return cls(value.to_bytes(cls.SIZE, "little"))

    def int(self) -> int:
        return int.from_bytes(self._b, "little")


class NodeID(BaseID):
    """A node daemon."""

    SIZE = 16


class WorkerID(BaseID):
    """A worker or driver process."""

    SIZE = 16


class ActorID(BaseID):
    """An actor."""

    SIZE = 16


class TaskID(BaseID):
    """A task."""

    SIZE = TASK_ID_BYTES


class FunctionID(BaseID):
    """A remote function in the function table."""

    SIZE = 16


class ActorClassID(BaseID):
    """An actor class in the function table."""

    SIZE = 16
