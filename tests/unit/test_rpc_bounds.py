"""Tests for the bounds of ``ember.rpc``: deadlines by class, drain, typed errors.

Each test runs its own event loop and a Unix socket under ``tmp_path``, with
tiny configured deadlines; no ember process is started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ember.protocol.messages import DEADLINE_CLASSES, METHODS, SCHEMA
from ember.rpc.connection import Connection, Schema, Server, connect
from ember.rpc.errors import ProtocolError, RemoteError, RpcTimeoutError
from ember.rpc.limits import Limits

TOKEN = b"bounds-token"
STEP_S = 5.0  # a bound on every await, so that a bug fails instead of hanging
TINY_S = 0.05


class Echo(msgspec.Struct, array_like=True):
    text: str


class Poll(msgspec.Struct, array_like=True):
    timeout_s: float = 0.0


METHODS_T: dict[str, tuple[type | None, type | None]] = {
    "test.echo": (Echo, Echo),
    "test.hang": (Echo, Echo),
    "test.poll": (Poll, Echo),
    "test.push": (Echo, Echo),
    "test.raise": (Echo, Echo),
}
CLASSES = {"test.poll": "long_poll", "test.push": "push"}


def schema(**limits: Any) -> Schema:
    base = {"control_deadline_s": TINY_S, "long_poll_grace_s": TINY_S}
    return Schema(METHODS_T, CLASSES, Limits(**{**base, **limits}))


class MyLookupError(KeyError):
    pass


def never(conn: Connection, req: Any, bufs: Any) -> Any:
    return asyncio.get_running_loop().create_future()  # never resolved


def handlers() -> dict[str, Any]:
    def echo(conn: Connection, req: Echo, bufs: Any) -> Any:
        return Echo(text=req.text.upper()), list(bufs)

    def raise_(conn: Connection, req: Echo, bufs: Any) -> Any:
        raise MyLookupError(req.text)

    return {
        "test.echo": echo,
        "test.hang": never,
        "test.poll": never,
        "test.push": never,
        "test.raise": raise_,
    }


def run(
    tmp_path: Path,
    body: Callable[[Connection, Server], Awaitable[None]],
    sch: Schema,
) -> None:
    async def main() -> None:
        server = Server(token=TOKEN, schema=sch, handlers=handlers())
        address = await server.listen(f"unix:{tmp_path / 'sock'}")
        conn = await connect(address, token=TOKEN, schema=sch, timeout=STEP_S)
        try:
            async with asyncio.timeout(4 * STEP_S):
                await body(conn, server)
        finally:
            conn.abort()
            server.close()

    asyncio.run(main())


def test_every_method_has_a_known_deadline_class() -> None:
    assert set(DEADLINE_CLASSES) <= set(METHODS)
    assert SCHEMA.deadlines["control.kv_get"] is not None
    assert SCHEMA.deadlines["worker.push_task"] is None
    assert SCHEMA.classes["node.read_chunk"] == "transfer"


def test_a_call_to_a_peer_that_never_answers_fails_by_its_class_deadline(
    tmp_path: Path,
) -> None:
    async def body(conn: Connection, server: Server) -> None:
        t0 = time.monotonic()
        with pytest.raises(RpcTimeoutError, match=r"test\.hang"):
            await conn.call("test.hang", Echo(text="x"))
        assert time.monotonic() - t0 < STEP_S / 2
        assert conn._pending == {}  # the timed-out call is forgotten
        reply, _ = await conn.call("test.echo", Echo(text="still up"))
        assert reply == Echo(text="STILL UP")

    run(tmp_path, body, schema())


def test_a_long_poll_gets_its_own_bound_plus_grace(tmp_path: Path) -> None:
    async def body(conn: Connection, server: Server) -> None:
        with pytest.raises(RpcTimeoutError):
            await conn.call("test.poll", Poll(timeout_s=TINY_S))
        # Unbounded long polls and pushes outlive the control deadline (many times
        # over): they end with the connection, not by a deadline.
        for method, req in [("test.poll", Poll()), ("test.push", Echo(text="x"))]:
            call = asyncio.ensure_future(conn.call(method, req))
            done, _ = await asyncio.wait([call], timeout=20 * TINY_S)
            assert not done
            call.cancel()

    run(tmp_path, body, schema())


def test_connect_to_a_peer_that_never_sends_hello_fails_by_its_timeout(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.read()
            w.close()

        path = str(tmp_path / "mute")
        srv = await asyncio.start_unix_server(mute, path)
        async with srv:
            t0 = time.monotonic()
            with pytest.raises(RpcTimeoutError):
                await connect(
                    f"unix:{path}", token=TOKEN, schema=schema(), timeout=TINY_S
                )
            assert time.monotonic() - t0 < STEP_S / 2

    asyncio.run(main())


def test_writers_wait_for_drain_when_the_peer_stops_reading(tmp_path: Path) -> None:
    high = 2 * 1024 * 1024
    chunk = b"x" * (1024 * 1024)
    n = 100

    async def body(conn: Connection, server: Server) -> None:
        [peer] = server.connections
        peer._transport.pause_reading()  # type: ignore[union-attr]
        calls = [
            asyncio.ensure_future(
                conn.call("test.echo", Echo(text=str(i)), [chunk], timeout=STEP_S * 3)
            )
            for i in range(n)
        ]
        # Wait until every call has either been written or waits to write.
        while len(conn._pending) + len(conn._drain_waiters) < n:
            await asyncio.sleep(0)
            if all(c.done() for c in calls):
                break
        assert conn.write_buffer_size() <= high + 2 * len(chunk)
        assert len(conn._drain_waiters) > n // 2  # most are held back, not queued
        peer._transport.resume_reading()  # type: ignore[union-attr]
        replies = await asyncio.gather(*calls)
        assert [r.text for r, _ in replies] == [str(i) for i in range(n)]

    run(tmp_path, body, schema(write_high_water_bytes=high, control_deadline_s=STEP_S))


def test_a_malformed_request_gets_an_error_and_the_connection_stays(
    tmp_path: Path,
) -> None:
    async def body(conn: Connection, server: Server) -> None:
        with pytest.raises(RemoteError) as info:
            await conn.call("test.echo", [1, 2, 3], timeout=STEP_S)
        assert info.value.is_a(ProtocolError)
        assert "malformed test.echo request" in info.value.remote_message
        reply, _ = await conn.call("test.echo", Echo(text="ok"), timeout=STEP_S)
        assert reply == Echo(text="OK")
        assert not conn.is_closed()

    run(tmp_path, body, schema())


def test_remote_errors_match_by_class_and_base_class(tmp_path: Path) -> None:
    async def body(conn: Connection, server: Server) -> None:
        with pytest.raises(RemoteError) as info:
            await conn.call("test.raise", Echo(text="k"), timeout=STEP_S)
        err = info.value
        assert err.type_name == "MyLookupError"
        assert err.is_a(MyLookupError)
        assert err.is_a(KeyError)
        assert err.is_a(LookupError)
        assert err.is_a(ValueError, LookupError)
        assert not err.is_a(ValueError)
        assert not err.is_a(MemoryError)

    run(tmp_path, body, schema())


def test_waiting_to_write_to_a_peer_that_stopped_reading_has_a_deadline(
    tmp_path: Path,
) -> None:
    async def body(conn: Connection, server: Server) -> None:
        [peer] = server.connections
        peer._transport.pause_reading()  # type: ignore[union-attr]
        big = b"x" * (4 * 1024 * 1024)
        while not conn._write_paused:  # fill the buffer past the high-water mark
            conn.notify("test.echo", Echo(text="fill"), [big])
        with pytest.raises(RpcTimeoutError, match="not reading"):
            await conn.call("test.echo", Echo(text="late"))

    run(tmp_path, body, schema(write_high_water_bytes=1024 * 1024))
