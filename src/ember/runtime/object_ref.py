"""ObjectRef: a future for a value in the object store, and its generator."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

from ember.common.ids import OBJECT_ID_BYTES, task_id_of
from ember.protocol.messages import Address
from ember.runtime import current
from ember.runtime.serialization import note_contained_ref

if TYPE_CHECKING:
    from ember.runtime.ownership import RefCounter


class RefHost(Protocol):
    """What refs and generators need of the process's core worker."""

    refs: RefCounter

    async def get_async(self, ref: ObjectRef) -> Any: ...

    def ref_future(self, ref: ObjectRef) -> concurrent.futures.Future[Any]: ...

    def next_generator_item(
        self, task_id: bytes, index: int, timeout: float | None
    ) -> ObjectRef | None: ...

    async def next_generator_item_async(
        self, task_id: bytes, index: int
    ) -> ObjectRef | None: ...

    def generator_completed_ref(self, task_id: bytes) -> ObjectRef: ...

    def drop_generator(self, task_id: bytes) -> None: ...


def _address_tuple(a: Address | None) -> tuple[bytes, bytes, str, str] | None:
    return None if a is None else (a.worker_id, a.node_id, a.tcp, a.unix)


def _rebuild(oid: bytes, owner: tuple[bytes, bytes, str, str] | None) -> ObjectRef:
    addr = None if owner is None else Address(*owner)
    cw = current.worker_or_none()
    ref = ObjectRef(oid, addr, _register=False)
    if cw is not None:
        cw.refs.on_deserialized(ref)
    return ref


class ObjectRef:
    """A reference to an object (a task's return value or a ``put``).

    Hashable, picklable (borrowing is tracked) and awaitable.
    """

    __slots__ = ("__weakref__", "_id", "_owner", "_registered")

    def __init__(
        self, oid: bytes, owner: Address | None = None, *, _register: bool = True
    ) -> None:
        self._id = oid
        self._owner = owner
        self._registered = False
        if _register:
            cw = current.worker_or_none()
            if cw is not None:
                cw.refs.add_local(oid, owner)
                self._registered = True

    # identity -------------------------------------------------------------------
    def binary(self) -> bytes:
        return self._id

    def hex(self) -> str:
        return self._id.hex()

    @classmethod
    def size(cls) -> int:
        return OBJECT_ID_BYTES

    @classmethod
    def nil(cls) -> ObjectRef:
        """The nil ref (every byte 0xff); it names no object."""
        return cls(b"\xff" * OBJECT_ID_BYTES, None, _register=False)

    @classmethod
    def from_binary(cls, id_bytes: bytes) -> ObjectRef:
        """A ref to the object with this id, with no known owner (not counted)."""
        if not isinstance(id_bytes, bytes) or len(id_bytes) != OBJECT_ID_BYTES:
            raise ValueError(
                f"ID string needs to have length {OBJECT_ID_BYTES}, got "
                f"{len(id_bytes) if isinstance(id_bytes, bytes) else id_bytes!r}"
            )
        return cls(id_bytes, None, _register=False)

    @classmethod
    def from_hex(cls, hex_id: str) -> ObjectRef:
        return cls.from_binary(bytes.fromhex(hex_id))

    @classmethod
    def from_random(cls) -> ObjectRef:
        return cls(os.urandom(OBJECT_ID_BYTES), None, _register=False)

    def is_nil(self) -> bool:
        return self._id == b"\xff" * len(self._id)

    def redis_shard_hash(self) -> int:
        """A hash of the id that is stable across processes."""
        return int.from_bytes(hashlib.blake2b(self._id, digest_size=8).digest(), "big")

    def call_site(self) -> str:
        """Where the ref was created: ember does not record it (``""``, as Ray by default)."""
        return ""

    def task_id(self) -> Any:
        from ember.common.ids import TaskID

        return TaskID(task_id_of(self._id))

    def owner_address(self) -> Address | None:
        return self._owner

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    def __reduce__(self) -> tuple[Any, ...]:
        note_contained_ref(self)
        return (_rebuild, (self._id, _address_tuple(self._owner)))

    def __del__(self) -> None:
        if self._registered:
            cw = current.worker_or_none()
            if cw is not None:
                cw.refs.remove_local(self._id)

    # futures ----------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, Any]:
        cw = _cw()
        return cw.get_async(self).__await__()

    def future(self) -> concurrent.futures.Future[Any]:
        """A ``concurrent.futures.Future`` resolved with the value (or its error)."""
        return _cw().ref_future(self)

    def as_future(self, _internal: bool = False) -> asyncio.Future[Any]:
        """An ``asyncio.Future`` of the value, for the running event loop."""
        return asyncio.wrap_future(self.future())

    def _on_completed(self, callback: Any) -> None:
        self.future().add_done_callback(lambda f: callback(f.result()))


def _cw() -> RefHost:
    cw: RefHost | None = current.worker_or_none()
    if cw is None:
        raise RuntimeError("ember is not initialized: call ember.init() first")
    return cw


class ObjectRefGenerator:
    """The refs a ``num_returns="streaming"`` task yields, as they are produced.

    Iterate it (``for ref in gen``, or ``async for``) to get one ``ObjectRef``
    per yielded value; iteration ends when the task returns.  If the task
    raises, the next ref holds the error (``get`` raises it).
    """

    def __init__(self, task_id: bytes, owner: Address | None) -> None:
        self._task_id = task_id
        self._owner = owner
        self._index = 0

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef:
        ref = _cw().next_generator_item(self._task_id, self._index, timeout=None)
        if ref is None:
            raise StopIteration
        self._index += 1
        return ref

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef:
        ref = await _cw().next_generator_item_async(self._task_id, self._index)
        if ref is None:
            raise StopAsyncIteration
        self._index += 1
        return ref

    def completed(self) -> ObjectRef:
        """A ref that is ready when the task has finished."""
        return _cw().generator_completed_ref(self._task_id)

    def __del__(self) -> None:
        cw = current.worker_or_none()
        if cw is not None:
            cw.drop_generator(self._task_id)
