"""Tests for bounded peers (issue 9): what an unauthenticated or hostile peer can cost.

The memory and descriptor tests run a bare RPC server in a child process
(``rpc_server_proc.py``) so they can read its peak RSS and give it a low
descriptor limit; the others run in this process's event loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ember.rpc import connection as rpc
from ember.rpc.connection import Connection, Schema, Server, connect
from ember.rpc.errors import AuthenticationError, ProtocolError
from ember.rpc.framing import FrameDecoder, encode_prefix
from ember.rpc.handshake import Handshake
from ember.rpc.limits import Limits

PROC = Path(__file__).with_name("rpc_server_proc.py")
TOKEN = b"proc-token"
STEP_S = 10.0
MB = 1024 * 1024


class Echo(msgspec.Struct, array_like=True):
    text: str


ECHO_SCHEMA = Schema({"test.echo": (Echo, Echo)})


def frame(header: bytes, bufs: tuple[int, ...] = ()) -> bytes:
    return encode_prefix(len(header), list(bufs)) + header


def msg(kind: int, payload: Any, req_id: int = 0, method: str = "") -> bytes:
    return frame(msgspec.msgpack.encode((kind, req_id, method, payload)))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, Any]:
    dec = FrameDecoder()
    while True:
        data = await reader.read(65536)
        if not data:
            raise EOFError
        for header, _ in dec.feed(data):
            kind, _, _, payload = msgspec.msgpack.decode(header)
            return kind, payload


@pytest.fixture
def server_proc(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A server child process: ``(address, pid)``; ``request.param``: (nofile, env)."""
    nofile, env = getattr(request, "param", (0, {}))
    proc = subprocess.Popen(
        [sys.executable, str(PROC), str(nofile)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, **env},
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp:"), address
        yield address, proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=STEP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address[4:].rpartition(":")
    return host, int(port)


async def round_trips(address: str, n: int = 3) -> None:
    conn = await connect(address, token=TOKEN, schema=ECHO_SCHEMA, timeout=STEP_S)
    try:
        for _ in range(n):
            reply, _ = await conn.call("test.echo", Echo(text="ok"), timeout=STEP_S)
            assert reply == Echo(text="OK")
    finally:
        conn.close()


def test_an_integer_nonce_and_a_huge_frame_claim_allocate_nothing(
    server_proc: tuple[str, int],
) -> None:
    address, pid = server_proc

    async def main() -> None:
        await round_trips(address)
        before = peak_rss(pid)
        host, port = host_port(address)
        # 1. A 100-byte pre-auth AUTH whose nonce is the integer 300 MB.
        reader, writer = await asyncio.open_connection(host, port)
        kind, _ = await read_frame(reader)
        assert kind == rpc.HELLO
        auth = {"mac": b"\0" * 32, "nonce": 300 * MB, "proto": rpc.PROTOCOL_VERSION}
        writer.write(msg(rpc.AUTH, auth))
        await reader.read()  # refused: until it closes
        writer.close()
        # 2. An authenticated peer claims a 200 MiB frame and sends 1 MiB of it.
        conn = await connect(address, token=TOKEN, schema=ECHO_SCHEMA, timeout=STEP_S)
        t = conn._transport
        assert t is not None
        header = msgspec.msgpack.encode((rpc.REQUEST, 1, "test.echo", ["x"]))
        t.write(frame(header, (200 * MB,)) + header + b"y" * MB)
        await conn.drain()
        await round_trips(address)  # the server has read what we sent
        growth = peak_rss(pid) - before
        assert growth < 8 * MB, f"peak RSS grew by {growth / MB:.0f} MB"
        conn.abort()

    asyncio.run(asyncio.wait_for(main(), 6 * STEP_S))


def test_a_field_of_inf_is_refused_without_an_uncaught_exception(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[Any] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        server = Server(token=TOKEN, schema=ECHO_SCHEMA, handlers={})
        address = await server.listen(f"unix:{tmp_path / 'sock'}")
        reader, writer = await asyncio.open_unix_connection(address[5:])
        await read_frame(reader)
        auth = {"mac": b"\0" * 32, "nonce": b"\0" * 32, "proto": math.inf}
        writer.write(msg(rpc.AUTH, auth))
        assert await reader.read() == b""
        writer.close()
        server.close()
        assert errors == []
        assert server.refusals.total == 1

    asyncio.run(asyncio.wait_for(main(), STEP_S))


def test_slow_handshakes_are_closed_by_the_deadline_while_a_client_works(
    tmp_path: Path,
) -> None:
    n = 300
    sch = Schema(
        {"test.echo": (Echo, Echo)},
        limits=Limits(handshake_deadline_s=0.3, max_unauthenticated=10 * n),
    )

    async def main() -> None:
        server = Server(
            token=TOKEN,
            schema=sch,
            handlers={"test.echo": lambda c, r, b: Echo(text=r.text.upper())},
        )
        address = await server.listen(f"unix:{tmp_path / 'sock'}")
        slow = [await asyncio.open_unix_connection(address[5:]) for _ in range(n)]
        good = await connect(address, token=TOKEN, schema=sch, timeout=STEP_S)

        async def closed(reader: asyncio.StreamReader) -> None:
            while await reader.read(65536):
                pass  # HELLO, then EOF at the deadline

        waits = asyncio.gather(*(closed(r) for r, _ in slow))
        while not waits.done():  # the authenticated client keeps being served
            reply, _ = await good.call("test.echo", Echo(text="hi"), timeout=STEP_S)
            assert reply == Echo(text="HI")
        await waits
        assert server.gate.pending() == 0
        assert server.refusals.total == n
        assert not good.is_closed()
        for _, w in slow:
            w.close()
        good.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 3 * STEP_S))


LOW_NOFILE = (128, {"EMBER_RPC_HANDSHAKE_DEADLINE_S": "60"})


@pytest.mark.parametrize("server_proc", [LOW_NOFILE], indirect=True)
def test_an_idle_socket_flood_under_a_low_fd_limit_does_not_lock_out_a_client(
    server_proc: tuple[str, int],
) -> None:
    address, pid = server_proc
    host, port = host_port(address)

    async def main() -> None:
        flood = []
        for _ in range(400):  # three times the server's descriptor limit
            flood.append(await asyncio.open_connection(host, port))

        async def accepted(reader: asyncio.StreamReader) -> None:
            await reader.read(1)  # HELLO once accepted, or EOF once evicted

        # Bounded: on a server that runs out of descriptors this never completes.
        reads = [asyncio.ensure_future(accepted(r)) for r, _ in flood]
        await asyncio.wait(reads, timeout=STEP_S)
        await asyncio.wait_for(round_trips(address), STEP_S)
        assert len(psutil.Process(pid).net_connections()) < 64
        for _, w in flood:
            w.close()

    asyncio.run(asyncio.wait_for(main(), 4 * STEP_S))


# -- property tests: nothing a peer sends escapes as an unexpected exception ---------
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=64)
    | st.text(max_size=32),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
fields = st.dictionaries(
    st.sampled_from(
        ["nonce", "mac", "proto", "min_proto", "ember", "python", "info", "reason"]
    ),
    values,
    max_size=8,
)
kinds = st.sampled_from([0, 1, 2, 3, 10, 11, 12, 13, 99, -1])
methods = st.sampled_from(["", "test.echo", "nope"]) | st.text(max_size=16)
messages = st.tuples(kinds, st.integers(0, 2**32), methods, fields | values)


def _feed(side_is_server: bool, chunks: list[bytes], authed: bool) -> None:
    async def main() -> None:
        conn = Connection(
            token=TOKEN,
            schema=ECHO_SCHEMA,
            handlers={"test.echo": lambda c, r, b: r},
            is_server=side_is_server,
        )
        conn.connection_made(FakeTransport())  # type: ignore[arg-type]
        if authed:  # as if the handshake had passed: exercise dispatch
            conn._end_handshake()
            conn._decoder.max_frame_bytes = 1 << 20
        for c in chunks:
            conn.data_received(c)  # must never raise
        conn.connection_lost(None)

    asyncio.run(main())


class FakeTransport:
    def __init__(self) -> None:
        self.closing = False

    def writelines(self, parts: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    close = abort

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _check_handshake(is_server: bool, ms: list[Any]) -> None:
    hs = Handshake(TOKEN, is_server=is_server)
    for kind, _, _, payload in ms:
        try:
            hs.receive(kind, msgspec.Raw(msgspec.msgpack.encode(payload)))
        except (ProtocolError, AuthenticationError):
            return


def _check_stream(is_server: bool, ms: list[Any], junk: bytes) -> None:
    stream = b"".join(msg(k, p, i, m) for k, i, m, p in ms) + junk
    chunks = [stream[i : i + 37] for i in range(0, len(stream), 37)]
    _feed(is_server, chunks, authed=False)
    _feed(is_server, chunks, authed=True)


def _property(max_examples: int) -> Any:
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


@_property(300)
@given(st.booleans(), st.lists(messages, min_size=1, max_size=4))
def test_handshake_property_only_typed_errors(is_server: bool, ms: list[Any]) -> None:
    _check_handshake(is_server, ms)


@_property(150)
@given(st.booleans(), st.lists(messages, max_size=4), st.binary(max_size=200))
def test_frame_stream_property_nothing_escapes(
    is_server: bool, ms: list[Any], junk: bytes
) -> None:
    _check_stream(is_server, ms, junk)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@_property(4_000)
@given(st.booleans(), st.lists(messages, min_size=1, max_size=4))
def test_handshake_property_only_typed_errors_many(
    is_server: bool, ms: list[Any]
) -> None:
    _check_handshake(is_server, ms)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@_property(3_000)
@given(st.booleans(), st.lists(messages, max_size=4), st.binary(max_size=200))
def test_frame_stream_property_nothing_escapes_many(
    is_server: bool, ms: list[Any], junk: bytes
) -> None:
    _check_stream(is_server, ms, junk)


def test_raise_nofile_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    code = (
        "import resource; from ember.common.fdlimit import raise_nofile_limit;"
        "h = resource.getrlimit(resource.RLIMIT_NOFILE)[1];"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, h));"
        "n = raise_nofile_limit();"
        "print(n == h == resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"


def test_refused_peers_are_logged_as_one_summary_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ember.rpc.limits import RefusalLog

    async def main() -> None:
        log = RefusalLog(interval_s=3600)
        for i in range(50):
            log.note("handshake deadline passed" if i % 2 else "malformed handshake")
        log.close()

    with caplog.at_level("WARNING", logger="ember.rpc.limits"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # the first at once, the rest in one summary
    assert "refused 1 " in lines[0]
    assert "refused 49 " in lines[1]
    assert "handshake deadline passed: 25" in lines[1]
    assert "malformed handshake: 24" in lines[1]
