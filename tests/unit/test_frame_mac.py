"""Tests for authenticated frames (``ember.rpc.frame_mac``): a relay in the middle.

The relay forwards a client's frames to a server and can inject, replay,
reorder or alter them; each tampering must close the connection, while an
honest relay is transparent.  One event loop and loopback TCP per test (frames on Unix sockets and TLS
connections carry no MAC: see ``rpc.channel.frames_need_macs``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path

import msgspec
import pytest

from ember.rpc.connection import Connection, Schema, Server, connect
from ember.rpc.errors import ConnectionLostError, ProtocolError
from ember.rpc.frame_mac import (
    TAG_BYTES,
    FrameSigner,
    FrameVerifier,
    session_keys,
)
from ember.rpc.framing import FrameDecoder, encode_prefix

TOKEN = b"mac-token"
STEP_S = 5.0


class Echo(msgspec.Struct, array_like=True):
    text: str


SCHEMA = Schema({"test.echo": (Echo, Echo)})


def split_frames(buf: bytearray, first_tagged: int, count: int) -> list[bytes]:
    """Take every whole frame off ``buf`` (frames from ``first_tagged`` on carry tags)."""
    out = []
    while len(buf) >= 6:
        header_len, nbufs = struct.unpack_from(">IH", buf, 0)
        if len(buf) < 6 + 8 * nbufs:
            break
        lens = struct.unpack_from(f">{nbufs}Q", buf, 6)
        tag = TAG_BYTES if count + len(out) >= first_tagged else 0
        total = 6 + 8 * nbufs + header_len + sum(lens) + tag
        if len(buf) < total:
            break
        out.append(bytes(buf[:total]))
        del buf[:total]
    return out


def forged() -> bytes:
    header = msgspec.msgpack.encode((10, 99, "test.echo", ["forged"]))
    return encode_prefix(len(header), []) + header + os.urandom(TAG_BYTES)


def tamper(mode: str, frames: list[bytes]) -> list[bytes]:
    """What the relay forwards instead of client frames ``frames`` (1 and 2)."""
    one, two = frames
    if mode == "pass":
        return [one, two]
    if mode == "inject":
        return [one, forged(), two]
    if mode == "replay":
        return [one, one, two]
    if mode == "reorder":
        return [two, one]
    if mode == "alter":
        return [one[: -TAG_BYTES - 1] + b"X" + one[-TAG_BYTES:], two]
    raise AssertionError(mode)


async def relay(upstream: str, mode: str) -> asyncio.Server:
    host, _, port = upstream.removeprefix("tcp:").rpartition(":")

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection(host, int(port))

        async def down() -> None:
            while data := await sr.read(65536):
                cw.write(data)
            cw.close()

        async def up() -> None:
            buf, count, held = bytearray(), 0, []
            while data := await cr.read(65536):
                buf += data
                for f in split_frames(buf, first_tagged=1, count=count):
                    count += 1
                    if count in (2, 3):  # the first two frames after AUTH
                        held.append(f)
                        if len(held) == 2:
                            sw.writelines(tamper(mode, held))
                    else:
                        sw.write(f)
            sw.close()

        await asyncio.gather(down(), up(), return_exceptions=True)

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("mode", ["inject", "replay", "reorder", "alter"])
def test_a_tampered_frame_closes_the_connection(tmp_path: Path, mode: str) -> None:
    _run_relay(tmp_path, mode)


def test_an_honest_relay_is_transparent(tmp_path: Path) -> None:
    _run_relay(tmp_path, "pass")


def _run_relay(tmp_path: Path, mode: str) -> None:
    async def main() -> None:
        server = Server(
            token=TOKEN,
            schema=SCHEMA,
            handlers={"test.echo": lambda c, r, b: Echo(text=r.text.upper())},
        )
        upstream = await server.listen("tcp:127.0.0.1:0")
        rel = await relay(upstream, mode)
        rport = rel.sockets[0].getsockname()[1]
        conn: Connection = await connect(
            f"tcp:127.0.0.1:{rport}", token=TOKEN, schema=SCHEMA, timeout=STEP_S
        )
        calls = [
            conn.call_nowait("test.echo", Echo(text="a")),
            conn.call_nowait("test.echo", Echo(text="b")),
        ]
        done = await asyncio.gather(*calls, return_exceptions=True)
        if mode == "pass":
            assert [r[0].text for r in done] == ["A", "B"]
            reply, _ = await conn.call("test.echo", Echo(text="c"), timeout=STEP_S)
            assert reply == Echo(text="C")
            assert not conn.is_closed()
        else:
            assert any(isinstance(r, ConnectionLostError) for r in done), done
            await asyncio.wait_for(conn.closed, STEP_S)
        conn.abort()
        rel.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 3 * STEP_S))


def test_frames_round_trip_through_signer_and_verifying_decoder() -> None:
    c2s, s2c = session_keys(TOKEN, b"s" * 32, b"c" * 32)
    assert c2s != s2c  # one key per direction: no reflection
    signer, dec = FrameSigner(c2s), FrameDecoder()
    dec.authenticate(FrameVerifier(c2s), TAG_BYTES)
    stream = b""
    for i in range(3):
        header = msgspec.msgpack.encode((10, i, "m", None))
        parts = [encode_prefix(len(header), [3]), header, b"buf"]
        stream += b"".join([*parts, signer.tag(parts)])
    frames = list(dec.feed(stream))
    assert [bytes(b[0]) for _, b in frames] == [b"buf"] * 3
    wrong = FrameDecoder()
    wrong.authenticate(FrameVerifier(s2c), TAG_BYTES)
    with pytest.raises(ProtocolError, match="frame authentication failed"):
        list(wrong.feed(stream))


def test_large_frames_are_tagged_and_checked_too() -> None:
    key = os.urandom(32)
    signer, dec = FrameSigner(key), FrameDecoder()
    dec.authenticate(FrameVerifier(key), TAG_BYTES)
    big = os.urandom(3 * 1024 * 1024)  # above LARGE_MAC_BYTES: the Poly1305 path
    header = msgspec.msgpack.encode((11, 1, "", None))
    parts = [encode_prefix(len(header), [len(big)]), header, memoryview(big)]
    data = b"".join([*parts, signer.tag(parts)])
    frames = [
        f for i in range(0, len(data), 65536) for f in dec.feed(data[i : i + 65536])
    ]
    assert bytes(frames[0][1][0]) == big
    parts = [encode_prefix(len(header), [len(big)]), header, memoryview(big)]
    flipped = bytearray(b"".join([*parts, signer.tag(parts)]))
    flipped[len(flipped) // 2] ^= 1
    with pytest.raises(ProtocolError, match="frame authentication failed"):
        list(dec.feed(bytes(flipped)))


class _Transport:
    def __init__(self, family: int | None, tls: bool = False) -> None:
        self._extra = {
            "socket": None if family is None else socket.socket(family),
            "ssl_object": object() if tls else None,
        }

    def get_extra_info(self, name: str) -> object:
        return self._extra.get(name)


def test_frames_carry_macs_on_tcp_without_tls_only() -> None:
    from ember.rpc.channel import frames_need_macs

    tcp = _Transport(socket.AF_INET)
    unix = _Transport(socket.AF_UNIX)
    tls = _Transport(socket.AF_INET, tls=True)
    try:
        assert frames_need_macs(tcp) is True  # type: ignore[arg-type]
        assert frames_need_macs(unix) is False  # type: ignore[arg-type]
        assert frames_need_macs(tls) is False  # type: ignore[arg-type]
        assert frames_need_macs(None) is True
    finally:
        for t in (tcp, unix, tls):
            sock = t.get_extra_info("socket")
            assert isinstance(sock, socket.socket)
            sock.close()


def test_each_large_frame_is_tagged_under_a_key_of_its_own() -> None:
    """Poly1305 is a one-time MAC: the same large frame at the next sequence
    number gets another tag, and a tag replayed there fails."""
    key = os.urandom(32)
    signer = FrameSigner(key)
    big = os.urandom(256 * 1024)
    header = msgspec.msgpack.encode((11, 1, "", None))
    parts = [encode_prefix(len(header), [len(big)]), header, memoryview(big)]
    first, second = signer.tag(parts), signer.tag(parts)
    assert first != second
    dec = FrameDecoder()
    dec.authenticate(FrameVerifier(key), TAG_BYTES)
    frame = b"".join(parts)
    assert len(list(dec.feed(frame + first))) == 1
    with pytest.raises(ProtocolError, match="frame authentication failed"):
        list(dec.feed(frame + first))  # the first frame's tag, replayed at seq 1
