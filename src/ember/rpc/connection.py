"""Opening connections: ``connect``, ``Server`` and ``ConnectionPool``.

The public face of the RPC layer: it re-exports :class:`Connection` and the
names other packages use (``Schema``, ``REPLY_LATER``, ``ThreadCall``).  The
pieces live in their own modules, one job each::

    rpc/framing.py        sans-IO length-prefixed frames (bounded, no reserve-ahead)
    rpc/handshake.py      sans-IO mutual-token handshake with typed, bounded fields
    rpc/wire.py           frame kinds, header codec, Schema, typed ERROR bodies
    rpc/limits.py         deadline classes, bounds (Config ``rpc_*``), admission gate
    rpc/channel.py        Connection: protocol callbacks, call/notify, deadlines, drain
    rpc/dispatch.py       handler dispatch and loop-side writes (Connection mixin)
    rpc/thread_writes.py  writes from other threads (Connection mixin)

A server holds its unauthenticated connections under a :class:`Gate` (caps
per server and per source address, oldest evicted) and ends each handshake
at its deadline; :func:`connect` bounds the connect and the handshake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ember.common import tls
from ember.rpc.channel import Connection, Handler
from ember.rpc.dispatch import REPLY_LATER
from ember.rpc.errors import ConnectionLostError, RpcTimeoutError, TlsRequiredError
from ember.rpc.handshake import (
    AUTH,
    HELLO,
    MIN_COMPATIBLE_PROTOCOL,
    PRE_AUTH_MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    REJECT,
    WELCOME,
    _mac,
)
from ember.rpc.limits import Gate, RefusalLog
from ember.rpc.thread_writes import ThreadCall
from ember.rpc.wire import ERROR, NOTIFY, REPLY, REQUEST, Schema

__all__ = [
    "AUTH",
    "ERROR",
    "HELLO",
    "MIN_COMPATIBLE_PROTOCOL",
    "NOTIFY",
    "PRE_AUTH_MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "REJECT",
    "REPLY",
    "REPLY_LATER",
    "REQUEST",
    "WELCOME",
    "Connection",
    "ConnectionPool",
    "Handler",
    "Schema",
    "Server",
    "ThreadCall",
    "_mac",
    "connect",
]


async def connect(
    address: str,
    *,
    token: bytes,
    schema: Schema,
    handlers: dict[str, Handler] | None = None,
    info: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> Connection:
    """Open and authenticate a connection to ``unix:PATH`` or ``tcp:HOST:PORT``."""
    loop = asyncio.get_running_loop()

    def factory() -> Connection:
        return Connection(
            token=token,
            schema=schema,
            handlers=handlers or {},
            is_server=False,
            info=info,
        )

    conn: Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            if address.startswith("unix:"):
                _, conn = await loop.create_unix_connection(factory, address[5:])
            elif address.startswith("tcp:"):
                host, _, port = address[4:].rpartition(":")
                _, conn = await loop.create_connection(
                    factory, host, int(port), ssl=tls.client_context()
                )
            else:
                raise ValueError(
                    f"bad address {address!r}: expected unix:PATH or tcp:HOST:PORT"
                )
            await conn.ready
    except TimeoutError:
        if conn is not None:
            conn.abort()
        await _refuse_if_tls(address, timeout)
        raise RpcTimeoutError(
            f"connecting to {address} timed out after {timeout}s"
        ) from None
    except OSError as exc:
        why = tls.explain(exc)
        raise ConnectionLostError(f"cannot connect to {address}: {why}") from exc
    return conn


async def _refuse_if_tls(address: str, timeout: float) -> None:
    """A plaintext handshake that timed out at a TLS listener says so.

    A TLS listener waits for a ClientHello while a plaintext client waits for
    the server's HELLO: nothing but a timeout would tell the user otherwise.
    """
    if address.startswith("tcp:") and tls.client_context() is None:
        host, _, port = address[4:].rpartition(":")
        if await tls.speaks_tls(host, int(port), min(timeout, 3.0)):
            raise TlsRequiredError(f"cannot connect to {address}: {tls.NEEDS_TLS_HINT}")


class Server:
    """Accepts connections on one or more addresses with shared handlers."""

    def __init__(
        self,
        *,
        token: bytes,
        schema: Schema,
        handlers: dict[str, Handler],
        on_connect: Callable[[Connection], None] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self._token = token
        self._schema = schema
        self.handlers = handlers
        self._on_connect = on_connect
        self._info = info
        self._servers: list[asyncio.Server] = []
        self.connections: set[Connection] = set()
        self.addresses: list[str] = []
        limits = schema.limits
        #: refused peers, logged as one summary line per interval
        self.refusals = RefusalLog(limits.refusal_log_interval_s)
        #: the connections still in their handshake (capped, oldest evicted)
        self.gate = Gate(
            limits.max_unauthenticated,
            limits.max_unauthenticated_per_source,
            self.refusals,
        )

    def _factory(self) -> Connection:
        conn = Connection(
            token=self._token,
            schema=self._schema,
            handlers=self.handlers,
            is_server=True,
            info=self._info,
            gate=self.gate,
        )
        self.connections.add(conn)
        conn.on_close(self.connections.discard)
        on_connect = self._on_connect
        if on_connect is not None:
            conn.ready.add_done_callback(
                lambda f: None if f.cancelled() or f.exception() else on_connect(conn)
            )
        return conn

    async def listen(self, address: str) -> str:
        """Listen on ``unix:PATH`` or ``tcp:HOST:PORT`` (port 0 picks one); return it."""
        loop = asyncio.get_running_loop()
        if address.startswith("unix:"):
            srv = await loop.create_unix_server(self._factory, address[5:])
            actual = address
        else:
            host, _, port = address[4:].rpartition(":")
            srv = await loop.create_server(
                self._factory,
                host,
                int(port),
                reuse_address=True,
                ssl=tls.server_context(),
            )
            actual = f"tcp:{host}:{srv.sockets[0].getsockname()[1]}"
        self._servers.append(srv)
        self.addresses.append(actual)
        return actual

    def close(self) -> None:
        for s in self._servers:
            s.close()
        for c in list(self.connections):
            c.abort()
        self.refusals.close()


class ConnectionPool:
    """Cached connections to peers, by key: one connect at a time per key.

    Concurrent callers for the same key share one connect; a closed or failed
    connection is replaced on the next request.
    """

    def __init__(
        self,
        *,
        token: bytes,
        schema: Schema,
        handlers: dict[str, Handler],
        timeout_s: float,
    ) -> None:
        self._token = token
        self._schema = schema
        self._handlers = handlers
        self._timeout_s = timeout_s
        self._futs: dict[bytes, asyncio.Future[Connection]] = {}

    def cached(self, key: bytes) -> Connection | None:
        """The open connection for ``key``, if there is one now."""
        fut = self._futs.get(key)
        if fut is None or not fut.done() or fut.exception() is not None:
            return None
        conn = fut.result()
        return None if conn.is_closed() else conn

    async def get(self, key: bytes, address: str) -> Connection:
        """The connection for ``key``, connecting to ``address`` if needed."""
        fut = self._futs.get(key)
        if fut is not None and not fut.done():
            return await asyncio.shield(fut)
        conn = self.cached(key)
        if conn is not None:
            return conn
        fut = asyncio.get_running_loop().create_future()
        self._futs[key] = fut
        try:
            conn = await connect(
                address,
                token=self._token,
                schema=self._schema,
                handlers=self._handlers,
                timeout=self._timeout_s,
            )
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters get it through shield
            if self._futs.get(key) is fut:  # abort() may have dropped it meanwhile
                del self._futs[key]
            raise
        fut.set_result(conn)
        return conn

    def abort(self, key: bytes) -> None:
        """Drop ``key``'s connection now (its pending calls fail at once)."""
        fut = self._futs.pop(key, None)
        if fut is not None and fut.done() and fut.exception() is None:
            fut.result().abort()

    def close_all(self) -> None:
        for key in list(self._futs):
            conn = self.cached(key)
            if conn is not None:
                conn.close()
        self._futs.clear()
