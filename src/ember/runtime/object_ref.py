"""ObjectRef: a future for a value in the object store, and its generator."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ember.common.ids import OBJECT_ID_BYTES, task_id_of
from ember.protocol.messages import Address
from ember.runtime import current
from ember.runtime.serialization import note_contained_ref

if TYPE_CHECKING:
    from ember.runtime.ownership import RefCounter

T = TypeVar("T")


class RefHost(Protocol):
    """What refs need of the process's core worker."""

    refs: RefCounter

    async def get_async(self, ref: ObjectRef) -> Any: ...

    def ref_future(self, ref: ObjectRef) -> concurrent.futures.Future[Any]: ...


def _address_tuple(a: Address | None) -> tuple[bytes, bytes, str, str] | None:
    return None if a is None else (a.worker_id, a.node_id, a.tcp, a.unix)


def _rebuild(oid: bytes, owner: tuple[bytes, bytes, str, str] | None) -> ObjectRef:
    addr = None if owner is None else Address(*owner)
    cw = current.worker_or_none()
    ref = ObjectRef(oid, addr, _register=False)
    if cw is not None:
        cw.refs.on_deserialized(ref)
    return ref


class ObjectRef(Generic[T]):
    """A reference to an object (a task's return value or a ``put``).

    Hashable, picklable (borrowing is tracked) and awaitable.  Subscripting
    (``ObjectRef[int]``) only types it, as in Ray.
    """

    __slots__ = ("__weakref__", "_id", "_owner", "_registered")

    def __init__(
        self: ObjectRef[Any],
        oid: bytes,
        owner: Address | None = None,
        *,
        _register: bool = True,
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
    def __await__(self) -> Generator[Any, None, T]:
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


class StreamHost(Protocol):
    """What an ``ObjectRefGenerator`` needs of its process's streams
    (``runtime/generators.Generators`` on a cluster, a list in local mode)."""

    def next_item(
        self, task_id: bytes, index: int, timeout: float | None
    ) -> ObjectRef | None: ...

    async def next_item_async(self, task_id: bytes, index: int) -> ObjectRef | None: ...

    def peek(self, task_id: bytes, index: int) -> tuple[bool, bool]: ...

    def wait_ref(self, task_id: bytes, index: int) -> ObjectRef | None: ...

    def drop(self, task_id: bytes) -> None: ...


class ObjectRefGenerator:
    """The refs a ``num_returns="streaming"`` task yields, as they are produced.

    Iterate it (``for ref in gen``, or ``async for`` on any event loop) to get
    one ``ObjectRef`` per yielded value; iteration ends when the task returns.
    If the task raises, the next ref holds the error (``get`` raises it).
    ``ember.wait`` accepts it: it is ready when ``next(gen)`` would not block.
    As in Ray, it cannot be pickled, nor subscripted (``ObjectRef[int]`` can),
    and ``send``/``throw``/``close`` (and their async forms) raise
    ``NotImplementedError``: the task runs to its end.
    """

    def __init__(self, generator_ref: ObjectRef, worker: StreamHost) -> None:
        """Made by ``.remote()``: ``generator_ref`` is the task's completed ref."""
        self._generator_ref = generator_ref
        self._host = worker
        self._task_id = task_id_of(generator_ref.binary())
        self._index = 0

    # the generator protocol -----------------------------------------------------------
    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef[Any]:
        ref = self._host.next_item(self._task_id, self._index, None)
        if ref is None:
            raise StopIteration
        self._index += 1
        return ref

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef[Any]:
        ref = await self._host.next_item_async(self._task_id, self._index)
        if ref is None:
            raise StopAsyncIteration
        self._index += 1
        return ref

    def send(self, value: Any) -> Any:
        raise NotImplementedError(_NO_SEND.format("send"))

    def throw(self, value: Any) -> Any:
        raise NotImplementedError(_NO_SEND.format("throw"))

    def close(self) -> None:
        raise NotImplementedError(_NO_SEND.format("close"))

    async def asend(self, value: Any) -> Any:
        raise NotImplementedError(_NO_SEND.format("asend"))

    async def athrow(self, value: Any) -> Any:
        raise NotImplementedError(_NO_SEND.format("athrow"))

    async def aclose(self) -> None:
        raise NotImplementedError(_NO_SEND.format("aclose"))

    # state ----------------------------------------------------------------------------
    def completed(self) -> ObjectRef[Any]:
        """A ref that is ready when the task has finished (``get`` raises if the
        task failed as a whole, e.g. its worker died)."""
        return self._generator_ref

    def next_ready(self) -> bool:
        """Whether ``next(gen)`` returns at once with a ref that is ready; False
        once the stream is exhausted (see :meth:`is_finished`)."""
        arrived, _ended = self._host.peek(self._task_id, self._index)
        return arrived

    def is_finished(self) -> bool:
        """Whether the task has ended and every ref has been taken (``next``
        would raise ``StopIteration``)."""
        _arrived, ended = self._host.peek(self._task_id, self._index)
        return ended

    def _wait_ref(self) -> ObjectRef:
        """The ref ``ember.wait`` checks for this generator."""
        ref = self._host.wait_ref(self._task_id, self._index)
        return self._generator_ref if ref is None else ref

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError(
            "An ObjectRefGenerator cannot be pickled: it cannot be passed to or "
            "returned from another task or actor. Pass the ObjectRefs it yields instead."
        )

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._generator_ref.hex()})"

    def __del__(self) -> None:
        host = getattr(self, "_host", None)
        if host is not None:
            host.drop(self._task_id)


_NO_SEND = (
    "ObjectRefGenerator.{} is not supported (as in Ray): the task's generator runs "
    "on its worker and cannot be sent values, thrown into or closed from here."
)
