"""Tests for value serialization and the stored layout (``ember.runtime.serialization``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ember.runtime.serialization import (
    ALIGN,
    ArgRef,
    args_blob,
    deserialize,
    read_layout,
    serialize,
    substitute_args,
    write_layout,
)


def aligned_buffer(size: int) -> tuple[np.ndarray, memoryview]:
    """A writable buffer whose first byte is 64-byte aligned (like an arena extent)."""
    raw = np.zeros(size + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    backing = raw[start : start + size]
    assert backing.ctypes.data % ALIGN == 0
    return backing, memoryview(backing).cast("B")


def address(view: memoryview) -> int:
    return int(np.frombuffer(view, dtype=np.uint8).ctypes.data) if view.nbytes else 0


def test_layout_round_trips_numpy_arrays_zero_copy() -> None:
    value = {
        "a": np.arange(1000, dtype=np.float64),
        "b": np.arange(7, dtype=np.int8),  # odd length: the next buffer needs padding
        "c": np.ones((3, 5), dtype=np.float32),
        "name": "weights",
    }
    ser = serialize(value)
    assert len(ser.buffers) == 3  # every array went out of band
    backing, view = aligned_buffer(ser.layout_size())
    write_layout(ser, view)

    data, bufs = read_layout(view)
    base = int(backing.ctypes.data)
    for b in bufs:
        assert (address(b) - base) % ALIGN == 0
        assert address(b) % ALIGN == 0
    out = deserialize(data, bufs)
    assert out["name"] == "weights"
    for key in ("a", "b", "c"):
        np.testing.assert_array_equal(out[key], value[key])
        assert out[key].dtype == value[key].dtype
        assert np.shares_memory(out[key], backing)  # a view, not a copy
        assert out[key].ctypes.data % ALIGN == 0

    out["a"][0] = 0.0
    backing[:] = 0  # writing the store's memory changes what readers see
    assert not out["a"].any()


def test_layout_read_only_memory_gives_read_only_arrays() -> None:
    ser = serialize(np.arange(100, dtype=np.int64))
    _, view = aligned_buffer(ser.layout_size())
    write_layout(ser, view)
    data, bufs = read_layout(view.toreadonly())
    arr = deserialize(data, bufs)
    np.testing.assert_array_equal(arr, np.arange(100))
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr[0] = 1


def test_layout_size_covers_header_data_and_padding() -> None:
    ser = serialize([np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.uint8)])
    data_end = 16 + 8 * 2 + len(ser.data)
    first = -(-data_end // ALIGN) * ALIGN
    assert ser.layout_size() == first + ALIGN + 1
    assert ser.total_bytes() == len(ser.data) + 2


def test_layout_of_a_value_without_buffers() -> None:
    ser = serialize({"x": 1, "y": [1, 2, 3]})
    assert ser.buffers == []
    _, view = aligned_buffer(ser.layout_size())
    write_layout(ser, view)
    data, bufs = read_layout(view)
    assert bufs == []
    assert deserialize(data, bufs) == {"x": 1, "y": [1, 2, 3]}


def test_args_blob_names_position_of_unserializable_argument() -> None:
    lock = threading.Lock()
    with pytest.raises(TypeError) as info:
        args_blob((1, {"lock": lock, "ok": 2}), {}, lambda v: False)
    msg = str(info.value)
    assert "positional argument 1" in msg
    assert "['lock']" in msg
    assert repr(lock) in msg
    assert "positional argument 0" not in msg


def test_args_blob_names_keyword_of_unserializable_argument() -> None:
    lock = threading.Lock()
    with pytest.raises(TypeError) as info:
        args_blob((), {"cfg": {"inner": [lock]}}, lambda v: False)
    msg = str(info.value)
    assert "keyword argument 'cfg'" in msg
    assert "['inner'][0]" in msg
    assert repr(lock) in msg


def test_args_blob_replaces_top_level_refs_with_placeholders() -> None:
    class Ref:
        pass

    r0, r1 = Ref(), Ref()
    ser, refs = args_blob((r0, 5), {"k": r1}, lambda v: isinstance(v, Ref))
    assert refs == [r0, r1]
    a, k = deserialize(ser.data, ser.buffers)
    assert [type(a[0]), type(k["k"])] == [ArgRef, ArgRef]
    assert [a[0].i, k["k"].i] == [0, 1]
    assert substitute_args(a, k, ["v0", "v1"]) == (["v0", 5], {"k": "v1"})
