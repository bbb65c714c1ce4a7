"""Tests for the sans-IO frame decoder (``ember.rpc.framing``)."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from ember.rpc.errors import ProtocolError
from ember.rpc.framing import (
    MAX_BUFFERS,
    MAX_FRAME_BYTES,
    MAX_HEADER_BYTES,
    FrameDecoder,
    encode_prefix,
)

Frame = tuple[bytes, list[bytes]]


def encode(header: bytes, bufs: list[bytes]) -> bytes:
    return encode_prefix(len(header), [len(b) for b in bufs]) + header + b"".join(bufs)


def as_bytes(frame: tuple[memoryview, list[memoryview]]) -> Frame:
    header, bufs = frame
    return bytes(header), [bytes(b) for b in bufs]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, prev = [], 0
    for p in [*points, len(data)]:
        chunks.append(data[prev:p])
        prev = p
    return chunks


blobs = st.binary(max_size=300)
frames = st.lists(st.tuples(blobs, st.lists(blobs, max_size=5)), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(frames=frames, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_decoder_round_trips_frames_split_anywhere(
    frames: list[Frame], cuts: list[int]
) -> None:
    stream = b"".join(encode(h, bufs) for h, bufs in frames)
    dec = FrameDecoder()
    out: list[Frame] = []
    for chunk in split(stream, cuts):
        out.extend(as_bytes(f) for f in dec.feed(chunk))
    assert out == frames
    assert dec.pending_bytes() == 0


@given(header=blobs, bufs=st.lists(blobs, max_size=4))
def test_decoder_pending_bytes_counts_what_is_missing(
    header: bytes, bufs: list[bytes]
) -> None:
    data = encode(header, bufs)
    prefix_len = 6 + 8 * len(bufs)
    body = len(header) + sum(len(b) for b in bufs)
    dec = FrameDecoder()
    assert list(dec.feed(data[:prefix_len])) == [] or body == 0
    if body:
        assert dec.pending_bytes() == body
        assert [as_bytes(f) for f in dec.feed(data[prefix_len:])] == [(header, bufs)]
    assert dec.pending_bytes() == 0


def test_decoder_yields_nothing_for_a_partial_prefix() -> None:
    data = encode(b"hdr", [b"x"])
    dec = FrameDecoder()
    for i in range(len(data) - 1):
        assert list(dec.feed(data[i : i + 1])) == []
    assert [as_bytes(f) for f in dec.feed(data[-1:])] == [(b"hdr", [b"x"])]


def test_decoder_buffers_are_views_not_copies_of_the_header() -> None:
    dec = FrameDecoder()
    [(header, bufs)] = list(dec.feed(encode(b"h", [b"abc", b""])))
    assert isinstance(header, memoryview)
    assert all(isinstance(b, memoryview) for b in bufs)
    assert bufs[0].obj is header.obj  # slices of one frame, not separate copies


def _prefix(header_len: int, lens: list[int]) -> bytes:
    return struct.pack(">IH", header_len, len(lens)) + struct.pack(
        f">{len(lens)}Q", *lens
    )


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(_prefix(MAX_HEADER_BYTES + 1, []), id="header"),
        pytest.param(_prefix(0xFFFFFFFF, []), id="header-max-u32"),
        pytest.param(struct.pack(">IH", 1, MAX_BUFFERS + 1), id="buffer-count"),
        pytest.param(_prefix(16, [MAX_FRAME_BYTES]), id="frame"),
        pytest.param(_prefix(0, [MAX_FRAME_BYTES // 2 + 1] * 2), id="frame-sum"),
        pytest.param(_prefix(0, [2**64 - 1]), id="buffer-max-u64"),
    ],
)
def test_decoder_rejects_oversized_frame_before_allocating(prefix: bytes) -> None:
    dec = FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="too large"):
            list(dec.feed(prefix))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Only the prefix itself was fed: nothing frame-sized may have been reserved.
    assert peak < 1024 * 1024


def test_decoder_accepts_the_largest_allowed_header_prefix() -> None:
    dec = FrameDecoder()
    assert list(dec.feed(_prefix(MAX_HEADER_BYTES, []))) == []
    assert dec.pending_bytes() == MAX_HEADER_BYTES


def test_encode_prefix_layout() -> None:
    assert encode_prefix(5, [1, 2]) == _prefix(5, [1, 2])
    assert encode_prefix(0, []) == b"\x00\x00\x00\x00\x00\x00"


def test_decoder_large_frame_arrives_in_pieces_and_is_read_only():
    from ember.rpc.framing import LARGE_FRAME_BYTES

    payload = bytes(range(256)) * (3 * LARGE_FRAME_BYTES // 256)
    header = b"hdr"
    data = encode_prefix(len(header), [len(payload)]) + header + payload
    dec = FrameDecoder()
    frames = []
    for i in range(0, len(data), 65_536):
        frames.extend(dec.feed(data[i : i + 65_536]))
    assert len(frames) == 1
    got_header, bufs = frames[0]
    assert bytes(got_header) == header
    assert bytes(bufs[0]) == payload
    assert bufs[0].readonly
    assert dec.pending_bytes() == 0
