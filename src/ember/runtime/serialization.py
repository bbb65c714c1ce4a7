"""Values to bytes and back: cloudpickle + pickle-5 out-of-band buffers.

A serialized value is ``data`` (the pickle stream) plus ``buffers`` (raw
out-of-band buffers: numpy arrays and other buffer-protocol objects).  In the
shared-memory store it is laid out as::

    u64 data_len | u32 nbufs | u32 reserved | u64 buf_len * nbufs | data | (pad 64) buf_0 | ...

so every buffer starts 64-byte aligned and reads back zero-copy.

ObjectRefs met while pickling are collected (``contained``) so that the
owner of the outer value can keep them alive (borrowing, DESIGN.md §2).

Code pickled by value keeps its real ``co_filename`` (cloudpickle >= 3.1
writes ``<dynamic-code>``), so remote tracebacks name the user's file and
show its source lines, as Ray's do.

Errors always travel: :func:`error_bytes` never raises, and falls back (as
Ray does) to an error that keeps the original text and traceback when the
exception, or its cause, cannot be pickled or unpickled.
"""

from __future__ import annotations

import io
import logging
import pickle
import struct
import sys
import threading
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any

import cloudpickle
from cloudpickle import cloudpickle as _cp

from ember import exceptions as exc_mod
from ember.common.parallel_copy import copy_into

_FAST_TYPES = (int, float, str, bytes, bool, type(None))
_HDR = struct.Struct("<QII")
ALIGN = 64

_ctx = threading.local()


logger = logging.getLogger(__name__)

# Where CodeType's reduce arguments hold co_filename (3.10 and later).
_FILENAME_ARG = 10


def _code_reduce(code: types.CodeType) -> Any:
    fn, args = _cp._code_reduce(code)
    if sys.version_info >= (3, 10) and args[_FILENAME_ARG] == "<dynamic-code>":
        args = (*args[:_FILENAME_ARG], code.co_filename, *args[_FILENAME_ARG + 1 :])
    return fn, args


#: type -> reducer (``obj -> (rebuild, args)``) for types registered with
#: ``ember.util.register_serializer``; consulted before the type's own pickling.
custom_reducers: dict[type, Callable[[Any], Any]] = {}


class _Pickler(cloudpickle.Pickler):
    """cloudpickle's pickler: registered serializers first, and code keeps its file name.

    The C pickler reads ``dispatch_table`` when an instance is made; the ChainMap
    holds ``custom_reducers`` itself, so later registrations are seen.
    """

    dispatch_table = ChainMap(
        custom_reducers, {types.CodeType: _code_reduce}, _cp.Pickler.dispatch_table
    )


def dumps(
    value: Any, buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None
) -> bytes:
    """``cloudpickle.dumps`` (protocol 5) that keeps code objects' file names."""
    with io.BytesIO() as out:
        _Pickler(out, protocol=5, buffer_callback=buffer_callback).dump(value)
        return out.getvalue()


def _contained() -> list[Any] | None:
    return getattr(_ctx, "contained", None)


def note_contained_ref(ref: Any) -> None:
    """Called by ``ObjectRef.__reduce__``: records a ref inside a value being pickled."""
    c = _contained()
    if c is not None:
        c.append(ref)


class SerializedValue:
    """A pickled value, its out-of-band buffers and the refs it contains."""

    __slots__ = ("buffers", "contained", "data")

    def __init__(self, data: bytes, buffers: list[Any], contained: list[Any]) -> None:
        self.data = data
        self.buffers = buffers
        self.contained = contained

    def total_bytes(self) -> int:
        return len(self.data) + sum(memoryview(b).nbytes for b in self.buffers)

    def layout_size(self) -> int:
        n = _HDR.size + 8 * len(self.buffers) + len(self.data)
        for b in self.buffers:
            n = _align(n) + memoryview(b).nbytes
        return n

    def frames(self) -> list[Any]:
        """``[data, *buffers]`` as raw message buffers."""
        return [self.data, *[memoryview(b).cast("B") for b in self.buffers]]


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def serialize(value: Any) -> SerializedValue:
    """Pickle ``value``; raise TypeError naming what could not be pickled."""
    if type(value) in _FAST_TYPES:
        return SerializedValue(pickle.dumps(value, protocol=5), [], [])
    buffers: list[pickle.PickleBuffer] = []
    prev = _contained()
    contained: list[Any] = []
    _ctx.contained = contained
    try:
        data = dumps(value, buffer_callback=buffers.append)
    except Exception as exc:
        raise TypeError(_describe_unserializable(value, exc)) from exc
    finally:
        _ctx.contained = prev
    raws = [b.raw() for b in buffers]
    return SerializedValue(data, raws, contained)


def deserialize(data: Any, buffers: list[Any]) -> Any:
    """Unpickle; numpy arrays come back as views over ``buffers`` (zero-copy)."""
    return pickle.loads(data, buffers=buffers)


def write_layout(ser: SerializedValue, out: memoryview) -> None:
    """Write ``ser`` into ``out`` (at least ``layout_size()`` bytes)."""
    lens = [memoryview(b).nbytes for b in ser.buffers]
    _HDR.pack_into(out, 0, len(ser.data), len(lens), 0)
    off = _HDR.size
    struct.pack_into(f"<{len(lens)}Q", out, off, *lens)
    off += 8 * len(lens)
    out[off : off + len(ser.data)] = ser.data
    off += len(ser.data)
    for b, n in zip(ser.buffers, lens, strict=True):
        off = _align(off)
        copy_into(out[off : off + n], b)  # several threads for a large one
        off += n


def read_layout(view: memoryview) -> tuple[memoryview, list[memoryview]]:
    """Split a stored value back into ``(data, buffers)`` views (no copies)."""
    data_len, nbufs, _ = _HDR.unpack_from(view, 0)
    off = _HDR.size
    lens = struct.unpack_from(f"<{nbufs}Q", view, off)
    off += 8 * nbufs
    data = view[off : off + data_len]
    off += data_len
    bufs = []
    for n in lens:
        off = _align(off)
        bufs.append(view[off : off + n])
        off += n
    return data, bufs


def loads_function(data: bytes) -> Any:
    return pickle.loads(data)


def dumps_plain(value: Any) -> bytes:
    """cloudpickle without out-of-band buffers (errors, small control values)."""
    return dumps(value)


def _describe_unserializable(value: Any, exc: Exception) -> str:
    path = _find_unpicklable(value, "value", depth=0)
    where = f" The offending object is {path[1]!r} at {path[0]}." if path else ""
    return (
        f"Could not serialize {type(value).__name__} object: {exc}.{where} Arguments and return "
        "values of remote functions must be picklable (cloudpickle); create unpicklable "
        "resources such as locks, sockets or open files inside the task or actor instead."
    )


def _find_unpicklable(value: Any, path: str, depth: int) -> tuple[str, Any] | None:
    if depth > 6:
        return None
    children: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        children = [(f"{path}[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        children = [(f"{path}.{k}", v) for k, v in vars(value).items()]
    for child_path, child in children:
        try:
            dumps(child, buffer_callback=lambda b: None)
        except Exception:  # noqa: BLE001  (user code or user values)
            return _find_unpicklable(child, child_path, depth + 1) or (
                child_path,
                child,
            )
    return None


def args_blob(
    args: tuple[Any, ...], kwargs: dict[str, Any], is_ref: Callable[[Any], bool]
) -> tuple[SerializedValue, list[Any]]:
    """Serialize call arguments; top-level refs become placeholders.

    Returns the serialized ``(args, kwargs)`` (with each top-level ObjectRef
    replaced by ``ArgRef(i)``) and the list of those refs, in order.
    """
    refs: list[Any] = []

    def sub(v: Any) -> Any:
        if is_ref(v):
            refs.append(v)
            return ArgRef(len(refs) - 1)
        return v

    a = tuple(sub(v) for v in args)
    k = {key: sub(v) for key, v in kwargs.items()}
    if not k and all(type(v) in _FAST_TYPES or type(v) is ArgRef for v in a):
        return SerializedValue(pickle.dumps((a, k), protocol=5), [], []), refs
    try:
        ser = serialize((a, k))
    except TypeError as exc:
        raise TypeError(
            _describe_call_args(args, kwargs) or str(exc)
        ) from exc.__cause__
    return ser, refs


def _describe_call_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    items = [(f"positional argument {i}", v) for i, v in enumerate(args)]
    items += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
    for where, v in items:
        try:
            dumps(v, buffer_callback=lambda b: None)
        except Exception as exc:  # noqa: BLE001  (user code or user values)
            inner = _find_unpicklable(v, "", 0)
            detail = (
                f" (the unpicklable part is {inner[1]!r} at {where}{inner[0]})"
                if inner
                else ""
            )
            return (
                f"Could not serialize {where} of type {type(v).__name__}: {exc}{detail}. "
                "Arguments of remote functions must be picklable; create unpicklable resources "
                "(locks, sockets, open files) inside the task instead."
            )
    return ""


class ArgRef:
    """Placeholder for the i-th top-level ObjectRef argument."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return (ArgRef, (self.i,))


def substitute_args(
    args: tuple[Any, ...], kwargs: dict[str, Any], values: list[Any]
) -> tuple[list[Any], dict[str, Any]]:
    a = [values[v.i] if type(v) is ArgRef else v for v in args]
    k = {key: values[v.i] if type(v) is ArgRef else v for key, v in kwargs.items()}
    return a, k


def error_bytes(error: BaseException) -> bytes:
    """Pickle an error for its caller; never raises.

    A ``TaskError`` whose cause cannot be pickled keeps its traceback but gets
    an ``EmberError`` cause that names the class and the pickling failure (Ray:
    "isn't serializable"). An error that pickles but does not unpickle (say, a
    constructor with two required arguments) becomes ``UnserializableException``
    carrying the original text, as Ray's driver reports it.
    """
    if isinstance(error, exc_mod.TaskError) and error.cause is not None:
        try:
            dumps(error.cause)
        except Exception as exc:  # noqa: BLE001  (user exceptions)
            cls = type(error.cause)
            name = f"{cls.__module__}.{cls.__qualname__}"
            logger.warning(
                "The exception %s raised by %s isn't serializable: %s",
                name,
                error.function_name,
                exc,
            )
            error.cause = exc_mod.EmberError(
                f"Exception {name} isn't serializable: {exc}.\n"
                f"Original exception details:\n{error.traceback_str}"
            )
    try:
        data = dumps(error)
        pickle.loads(data)
    except Exception:  # noqa: BLE001  (user exceptions)
        data = b""
    if data:
        return data
    try:
        text = f"{type(error).__module__}.{type(error).__qualname__}: {error}"
    except Exception:  # noqa: BLE001  (a user __str__ that raises)
        text = f"{type(error).__module__}.{type(error).__qualname__}"
    return dumps(exc_mod.UnserializableException(text))


def exception_bytes(exc: BaseException) -> bytes:
    """Pickle an exception; fall back to a plain RuntimeError with its text."""
    try:
        return dumps(exc)
    except Exception:  # noqa: BLE001  (user code or user values)
        return dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
