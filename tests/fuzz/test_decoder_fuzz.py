"""Fuzzing of the sans-IO parts every peer reaches first: frame decoding and the handshake.

Whatever bytes arrive, the frame decoder yields frames or raises
``ProtocolError`` (never another exception, never a frame larger than its cap),
and the handshake accepts a peer only if it proved the token, refusing
everything else with ``ProtocolError`` or ``AuthenticationError``.
"""

from __future__ import annotations

import itertools
import os

import msgspec
from hypothesis import given, settings, strategies as st
from tests.fuzz.strategies import junk

from ember.rpc.errors import AuthenticationError, ProtocolError
from ember.rpc.framing import FrameDecoder, encode_prefix
from ember.rpc.handshake import AUTH, HELLO, REJECT, WELCOME, Handshake

EXAMPLES = int(os.environ.get("FUZZ_FRAMES", 300))
CAP = 1 << 20


def _valid_frame(header: bytes, bufs: list[bytes]) -> bytes:
    return encode_prefix(len(header), [len(b) for b in bufs]) + header + b"".join(bufs)


frames = st.builds(
    _valid_frame, st.binary(max_size=200), st.lists(st.binary(max_size=50), max_size=3)
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A run of valid frames with bytes flipped, cut or inserted somewhere."""
    data = bytearray(b"".join(draw(st.lists(frames, min_size=1, max_size=4))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 16))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=EXAMPLES)
@given(
    data=st.one_of(st.binary(max_size=600), mutated()),
    cuts=st.lists(st.integers(0, 600), max_size=6),
)
def test_decoder_yields_frames_or_refuses_whatever_arrives(
    data: bytes, cuts: list[int]
) -> None:
    dec = FrameDecoder(max_frame_bytes=CAP)
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    try:
        for a, b in itertools.pairwise(edges):
            for header, bufs in dec.feed(data[a:b]):
                size = len(header) + sum(len(x) for x in bufs)
                assert size <= CAP
    except ProtocolError:
        return  # the peer is dropped
    assert dec.buffered_bytes() <= len(data)


@settings(max_examples=EXAMPLES)
@given(
    kind=st.sampled_from([HELLO, AUTH, WELCOME, REJECT, 4, 255, -1]),
    payload=st.one_of(
        junk,
        st.fixed_dictionaries(
            {"nonce": st.binary(max_size=40), "proto": st.integers(-5, 5)},
            optional={
                "mac": st.binary(max_size=40),
                "ember": st.text(max_size=10),
                "min_proto": st.integers(-5, 5),
                "info": junk,
            },
        ),
    ),
    is_server=st.booleans(),
)
def test_handshake_refuses_a_peer_that_did_not_prove_the_token(
    kind: int, payload: object, is_server: bool
) -> None:
    side = Handshake(b"the-token", is_server=is_server)
    raw = msgspec.Raw(msgspec.msgpack.encode(payload))
    try:
        side.receive(kind, raw)
    except (ProtocolError, AuthenticationError):
        assert not side.done
        return
    # Nothing random proves the token: the side may answer (a client sends its
    # AUTH after a HELLO), but it never counts the peer as authenticated.
    assert not side.done
