"""Tests for the authenticated handshake and dispatch of ``ember.rpc.connection``.

Each test runs its own event loop (``asyncio.run``) and a Unix socket under
``tmp_path``; no ember process is started.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ember.protocol.messages import SCHEMA, KvGetReply, KvGetRequest
from ember.rpc import connection as rpc
from ember.rpc.connection import Connection, Schema, Server, connect
from ember.rpc.errors import (
    AuthenticationError,
    ConnectionLostError,
    ProtocolError,
    RemoteError,
    RpcError,
)
from ember.rpc.framing import FrameDecoder, encode_prefix

TOKEN = b"right-token"
STEP_S = 5.0  # a bound on every await, so that a bug fails instead of hanging


class Echo(msgspec.Struct, array_like=True):
    text: str


TEST_SCHEMA = Schema(
    {
        "test.echo": (Echo, Echo),
        "test.no_handler": (Echo, Echo),  # known to the schema, never registered
    }
)


def echo(conn: Connection, req: Echo, bufs: list[memoryview]) -> Echo:
    return Echo(text=req.text.upper())


def run(
    tmp_path: Path,
    body: Callable[[str, Server], Awaitable[None]],
    schema: Schema = TEST_SCHEMA,
    handlers: dict[str, Any] | None = None,
) -> None:
    async def main() -> None:
        server = Server(
            token=TOKEN, schema=schema, handlers=handlers or {"test.echo": echo}
        )
        address = await server.listen(f"unix:{tmp_path / 'sock'}")
        try:
            async with asyncio.timeout(4 * STEP_S):
                await body(address, server)
        finally:
            server.close()

    asyncio.run(main())


async def open_client(address: str, token: bytes = TOKEN) -> Connection:
    return await connect(address, token=token, schema=TEST_SCHEMA, timeout=STEP_S)


async def assert_serving(address: str) -> None:
    conn = await open_client(address)
    try:
        reply, bufs = await conn.call("test.echo", Echo(text="ok"), timeout=STEP_S)
        assert reply == Echo(text="OK")
        assert bufs == []
    finally:
        conn.close()


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    data = b""
    async with asyncio.timeout(STEP_S):
        while chunk := await reader.read(65536):
            data += chunk
    return data


def frame(header: bytes, bufs: tuple[bytes, ...] = ()) -> bytes:
    return encode_prefix(len(header), [len(b) for b in bufs]) + header + b"".join(bufs)


def test_handshake_right_token_can_call_a_handler(tmp_path: Path) -> None:
    async def body(address: str, server: Server) -> None:
        conn = await open_client(address)
        assert conn.ready.done()
        assert not conn.is_closed()
        reply, _ = await conn.call("test.echo", Echo(text="hi"), timeout=STEP_S)
        assert reply == Echo(text="HI")
        reply, _ = await conn.call(
            "test.echo", Echo(text="with buffers"), [b"x" * 10], timeout=STEP_S
        )
        assert reply == Echo(text="WITH BUFFERS")
        assert len(server.connections) == 1
        conn.close()

    run(tmp_path, body)


def test_handshake_with_the_real_schema(tmp_path: Path) -> None:
    def kv_get(conn: Connection, req: KvGetRequest, bufs: Any) -> KvGetReply:
        return KvGetReply(value=req.namespace.encode() + req.key)

    async def body(address: str, server: Server) -> None:
        conn = await connect(address, token=TOKEN, schema=SCHEMA, timeout=STEP_S)
        reply, _ = await conn.call(
            "control.kv_get", KvGetRequest(namespace="fn", key=b"/k"), timeout=STEP_S
        )
        assert reply == KvGetReply(value=b"fn/k")
        conn.close()

    run(tmp_path, body, SCHEMA, {"control.kv_get": kv_get})


def test_handshake_wrong_token_is_refused(tmp_path: Path) -> None:
    async def body(address: str, server: Server) -> None:
        with pytest.raises(AuthenticationError, match="refused"):
            await open_client(address, token=b"wrong-token")
        with pytest.raises(AuthenticationError):
            await open_client(address, token=b"")
        await assert_serving(address)

    run(tmp_path, body)


def test_handshake_server_without_the_token_is_refused_by_the_client(
    tmp_path: Path,
) -> None:
    # The client checks the server's proof too: a server that does not hold the
    # token cannot impersonate the cluster.  Here the server lacks the client's
    # token, so the server refuses first; either way no connection is made.
    async def body(address: str, server: Server) -> None:
        with pytest.raises(AuthenticationError):
            await open_client(address, token=b"another-cluster")

    run(tmp_path, body)


def test_handshake_welcome_with_a_wrong_mac_is_refused(tmp_path: Path) -> None:
    """A fake server that answers WELCOME without knowing the token."""

    async def main() -> None:
        async def fake_server(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            enc = msgspec.msgpack.Encoder()
            hello = {"nonce": os.urandom(32), "proto": rpc.PROTOCOL_VERSION}
            writer.write(frame(enc.encode((rpc.HELLO, 0, "", hello))))
            await reader.read(65536)  # the client's AUTH
            welcome = {"mac": b"\x00" * 32, "info": {}}
            writer.write(frame(enc.encode((rpc.WELCOME, 0, "", welcome))))
            await writer.drain()
            await reader.read(65536)
            writer.close()

        path = str(tmp_path / "fake")
        srv = await asyncio.start_unix_server(fake_server, path)
        async with srv:
            with pytest.raises(AuthenticationError, match="token"):
                await connect(
                    f"unix:{path}", token=TOKEN, schema=TEST_SCHEMA, timeout=STEP_S
                )

    asyncio.run(main())


GARBAGE = {
    "random-bytes": os.urandom(64),
    "oversized-prefix": b"\xff" * 64,
    "bad-msgpack-header": frame(b"\xc1\xc1\xc1"),
    "wrong-header-shape": frame(msgspec.msgpack.encode({"x": 1})),
    "request-before-auth": frame(
        msgspec.msgpack.encode((rpc.REQUEST, 1, "test.echo", ["hi"]))
    ),
    "auth-missing-fields": frame(msgspec.msgpack.encode((rpc.AUTH, 0, "", {}))),
    "auth-not-a-dict": frame(msgspec.msgpack.encode((rpc.AUTH, 0, "", [1, 2]))),
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_handshake_garbage_closes_only_that_connection(
    tmp_path: Path, garbage: bytes
) -> None:
    async def body(address: str, server: Server) -> None:
        good = await open_client(address)  # a client that was there before
        reader, writer = await asyncio.open_unix_connection(address[len("unix:") :])
        writer.write(garbage)
        await writer.drain()
        received = await read_until_eof(reader)  # the server hung up on us
        # All it ever sent was its HELLO: nothing was dispatched, no reply.
        (header_len,) = struct.unpack_from(">I", received, 0)
        assert len(received) == 6 + header_len
        kind = msgspec.msgpack.decode(received[6:])[0]
        assert kind == rpc.HELLO
        writer.close()
        reply, _ = await good.call("test.echo", Echo(text="still"), timeout=STEP_S)
        assert reply == Echo(text="STILL")
        good.close()
        await assert_serving(address)

    run(tmp_path, body)


def test_handshake_unregistered_method_gets_an_error_reply(tmp_path: Path) -> None:
    async def body(address: str, server: Server) -> None:
        conn = await open_client(address)
        with pytest.raises(RemoteError) as info:
            await conn.call("test.no_handler", Echo(text="x"), timeout=STEP_S)
        assert info.value.type_name == "ProtocolError"
        assert "no handler" in info.value.remote_message
        assert not conn.is_closed()  # the connection stays usable
        reply, _ = await conn.call("test.echo", Echo(text="after"), timeout=STEP_S)
        assert reply == Echo(text="AFTER")
        conn.close()

    run(tmp_path, body)


def test_handshake_handler_exception_is_a_remote_error(tmp_path: Path) -> None:
    def boom(conn: Connection, req: Echo, bufs: Any) -> Echo:
        raise ValueError(f"bad text {req.text!r}")

    async def body(address: str, server: Server) -> None:
        conn = await open_client(address)
        with pytest.raises(RemoteError) as info:
            await conn.call("test.no_handler", Echo(text="x"), timeout=STEP_S)
        assert info.value.type_name == "ValueError"
        assert "bad text 'x'" in info.value.remote_message
        reply, _ = await conn.call("test.echo", Echo(text="after"), timeout=STEP_S)
        assert reply == Echo(text="AFTER")
        conn.close()

    run(tmp_path, body, handlers={"test.echo": echo, "test.no_handler": boom})


def test_handshake_method_unknown_to_the_schema_closes_that_connection(
    tmp_path: Path,
) -> None:
    """DESIGN.md §3: an unknown frame closes that one connection, others go on."""

    async def body(address: str, server: Server) -> None:
        other = await open_client(address)
        conn = await open_client(address)
        with pytest.raises(ConnectionLostError):
            await conn.call("test.not_in_schema", Echo(text="x"), timeout=STEP_S)
        async with asyncio.timeout(STEP_S):
            await conn.closed
        with pytest.raises(RpcError):
            await conn.call("test.echo", Echo(text="x"), timeout=STEP_S)
        reply, _ = await other.call("test.echo", Echo(text="other"), timeout=STEP_S)
        assert reply == Echo(text="OTHER")
        other.close()
        await assert_serving(address)

    run(tmp_path, body)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, Any]:
    """One handshake frame from a raw stream: ``(kind, payload)``."""
    dec = FrameDecoder()
    async with asyncio.timeout(STEP_S):
        while True:
            chunk = await reader.read(65536)
            assert chunk, "the peer closed before sending a frame"
            for header, _ in dec.feed(chunk):
                kind, _, _, payload = msgspec.msgpack.decode(header)
                return kind, payload


def test_handshake_server_refuses_an_old_protocol_version(tmp_path: Path) -> None:
    async def body(address: str, server: Server) -> None:
        reader, writer = await asyncio.open_unix_connection(address[len("unix:") :])
        kind, hello = await read_frame(reader)
        assert kind == rpc.HELLO
        assert hello["proto"] == rpc.PROTOCOL_VERSION
        nonce = os.urandom(32)
        mac = rpc._mac(TOKEN, b"client", hello["nonce"], nonce)
        auth = {"mac": mac, "nonce": nonce, "proto": 0, "ember": "0.0.1"}
        writer.write(frame(msgspec.msgpack.encode((rpc.AUTH, 0, "", auth))))
        kind, reject = await read_frame(reader)
        assert kind == rpc.REJECT
        # The reason names both sides' versions and what to do.
        assert f"this side speaks {rpc.PROTOCOL_VERSION}" in reject["reason"]
        assert "the peer speaks 0 (ember 0.0.1)" in reject["reason"]
        assert "install the same ember version" in reject["reason"]
        await read_until_eof(reader)
        writer.close()
        await assert_serving(address)

    run(tmp_path, body)


def test_handshake_client_refuses_a_newer_server(tmp_path: Path) -> None:
    async def main() -> None:
        async def newer_server(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            hello = {"nonce": os.urandom(32), "proto": 99, "min_proto": 99}
            writer.write(frame(msgspec.msgpack.encode((rpc.HELLO, 0, "", hello))))
            await reader.read(65536)
            writer.close()

        path = str(tmp_path / "newer")
        srv = await asyncio.start_unix_server(newer_server, path)
        async with srv:
            with pytest.raises(ProtocolError, match="protocol version mismatch"):
                await connect(
                    f"unix:{path}", token=TOKEN, schema=TEST_SCHEMA, timeout=STEP_S
                )

    asyncio.run(main())
