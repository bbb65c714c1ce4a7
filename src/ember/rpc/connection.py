"""Connection: authenticated, bidirectional request/reply over one stream.

Data flow::

    user thread --call_threadsafe--> loop thread
                                        | Connection.call(): id, future, write frame
                                        v
    transport  ==== frames ====>  peer Connection.data_received -> FrameDecoder
                                        | REQUEST: handler(conn, req, bufs)
                                        v
    transport  <=== REPLY/ERROR ==  peer writes reply; our future resolves

Theory of operation: both ends run a handshake first (HELLO -> AUTH ->
WELCOME/REJECT): an HMAC challenge-response over the cluster token in both
directions, so the token never crosses the wire and neither side talks to a
peer that lacks it.  Nothing but handshake frames is read before the peer is
authenticated.  After that either side may send REQUEST and NOTIFY frames; a
malformed frame closes this one connection (logged) and fails its pending
requests with :class:`ConnectionLostError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import os
import pickle
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import msgspec

from ember._version import __version__
from ember.common import tls
from ember.rpc.errors import (
    AuthenticationError,
    ConnectionClosedError,
    ConnectionLostError,
    ProtocolError,
    RemoteError,
    RpcTimeoutError,
    VersionMismatchError,
)
from ember.rpc.framing import MAX_FRAME_BYTES, FrameDecoder, encode_prefix

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MIN_COMPATIBLE_PROTOCOL = 1

HELLO, AUTH, WELCOME, REJECT = 0, 1, 2, 3
#: frames a peer may send before it has authenticated (handshake messages are tiny)
PRE_AUTH_MAX_FRAME_BYTES = 64 * 1024
REQUEST, REPLY, ERROR, NOTIFY = 10, 11, 12, 13


#: most buffers handed to one writev (the kernel's IOV_MAX is 1024)
_MAX_IOV = 512


class _ReplyLater:
    """Returned by a handler that will answer with :meth:`Connection.reply_from_thread`."""


#: see :class:`_ReplyLater`
REPLY_LATER: Any = _ReplyLater()


class ThreadCall:
    """The reply slot of a request sent with :meth:`Connection.call_from_thread`.

    Looks like a done future to ``on_done(self)``, which runs on the loop thread:
    at once for a reply, in a later callback for a failure.
    """

    __slots__ = ("_done", "_exc", "_loop", "_on_done", "_result")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_done: Callable[[ThreadCall], None]
    ) -> None:
        self._loop = loop
        self._on_done = on_done
        self._done = False
        self._result: Any = None
        self._exc: BaseException | None = None

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return False

    def set_result(self, result: Any) -> None:
        self._done, self._result = True, result
        self._on_done(self)

    def set_exception(self, exc: BaseException) -> None:
        self._done, self._exc = True, exc
        self._loop.call_soon(self._on_done, self)

    def exception(self) -> BaseException | None:
        return self._exc

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._result


_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(tuple[int, int, str, msgspec.Raw])
_any_decoder = msgspec.msgpack.Decoder()

Handler = Callable[["Connection", Any, list[memoryview]], Any]


class Schema:
    """Request and reply types by method name (from ``ember.protocol``)."""

    def __init__(self, methods: dict[str, tuple[type | None, type | None]]) -> None:
        self._req: dict[str, msgspec.msgpack.Decoder[Any] | None] = {
            m: msgspec.msgpack.Decoder(r) if r else None
            for m, (r, _) in methods.items()
        }
        self._rep: dict[str, msgspec.msgpack.Decoder[Any] | None] = {
            m: msgspec.msgpack.Decoder(r) if r else None
            for m, (_, r) in methods.items()
        }

    def decode_request(self, method: str, raw: msgspec.Raw) -> Any:
        try:
            dec = self._req[method]
        except KeyError:
            raise ProtocolError(f"unknown method {method!r}") from None
        return dec.decode(raw) if dec is not None else None

    def decode_reply(self, method: str, raw: msgspec.Raw) -> Any:
        dec = self._rep.get(method)
        return dec.decode(raw) if dec is not None else None


def _mac(token: bytes, *parts: bytes) -> bytes:
    return hmac.new(token, b"".join(parts), hashlib.sha256).digest()


class Connection(asyncio.Protocol):
    """One authenticated stream. Create with :func:`connect` or a server."""

    def __init__(
        self,
        *,
        token: bytes,
        schema: Schema,
        handlers: dict[str, Handler],
        is_server: bool,
        info: dict[str, Any] | None = None,
    ) -> None:
        self._token = token
        self._schema = schema
        self.handlers = handlers
        self._is_server = is_server
        self.info = dict(info or {})
        self.peer_info: dict[str, Any] = {}
        self._decoder = FrameDecoder(max_frame_bytes=PRE_AUTH_MAX_FRAME_BYTES)
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, tuple[str, asyncio.Future[Any] | ThreadCall]] = {}
        self._ids = itertools.count(1)
        self._authed = False
        self._nonce = os.urandom(32)
        self._peer_nonce = b""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_callbacks: list[Callable[[Connection], None]] = []
        self._closing_by_us = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        #: id of the request whose handler is running (loop thread)
        self.current_req_id = 0
        # Replies written from other threads (see reply_from_thread): all writes
        # happen under _wlock; _direct_fd is our own dup of the socket, so the
        # loop closing its fd can never make us write into a reused descriptor.
        self._wlock = threading.Lock()
        self._direct_fd = -1
        self._backlog: list[Any] | None = None
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: arbitrary per-connection state owned by the server using it
        self.state: dict[str, Any] = {}

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._is_server:
            self._send(
                HELLO,
                0,
                "",
                {"nonce": self._nonce, "proto": PROTOCOL_VERSION, "ember": __version__},
            )

    def data_received(self, data: bytes) -> None:
        try:
            for header, bufs in self._decoder.feed(data):
                kind, req_id, method, raw = _header_decoder.decode(header)
                if not self._authed:
                    self._handshake(kind, raw)
                    continue
                self._dispatch(kind, req_id, method, raw, bufs)
        except AuthenticationError as exc:
            self._fail_ready(exc)
            self.abort()
        except (ProtocolError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            logger.warning(
                "closing connection %s: bad frame: %s", self.peer_name(), exc
            )
            self._fail_ready(
                exc if isinstance(exc, ProtocolError) else ProtocolError(str(exc))
            )
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        with self._wlock:  # no thread may register a call or write after this
            if self._direct_fd >= 0:
                os.close(self._direct_fd)
                self._direct_fd = -1
            self._backlog = None
            pending, self._pending = self._pending, {}
        err: Exception
        if self._closing_by_us:
            err = ConnectionClosedError("connection closed")
        else:
            err = ConnectionLostError(f"connection to {self.peer_name()} lost")
        self._fail_ready(err)
        for _, fut in pending.values():
            if not fut.done():
                fut.set_exception(err)
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)
        for cb in self._close_callbacks:
            try:
                cb(self)
            except Exception:
                logger.exception("close callback failed")

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # -- handshake --------------------------------------------------------------
    def _handshake(self, kind: int, raw: msgspec.Raw) -> None:
        try:
            self._handshake_step(kind, raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed handshake message: {exc!r}") from exc
        if self._authed:
            self._decoder.max_frame_bytes = MAX_FRAME_BYTES

    def _handshake_step(self, kind: int, raw: msgspec.Raw) -> None:
        msg = _any_decoder.decode(raw)
        if not isinstance(msg, dict):
            raise ProtocolError("bad handshake message")
        if kind == HELLO and not self._is_server:
            self._check_version(msg)
            self._peer_nonce = bytes(msg["nonce"])
            mac = _mac(self._token, b"client", self._peer_nonce, self._nonce)
            self._send(
                AUTH,
                0,
                "",
                {
                    "mac": mac,
                    "nonce": self._nonce,
                    "proto": PROTOCOL_VERSION,
                    "ember": __version__,
                    "python": sys.version.split()[0],
                    "info": self.info,
                },
            )
        elif kind == AUTH and self._is_server:
            self._peer_nonce = bytes(msg["nonce"])
            want = _mac(self._token, b"client", self._nonce, self._peer_nonce)
            try:
                self._check_version(msg)
            except VersionMismatchError as exc:
                self._send(REJECT, 0, "", {"reason": str(exc)})
                raise AuthenticationError(str(exc)) from exc
            if not hmac.compare_digest(want, bytes(msg["mac"])):
                self._send(REJECT, 0, "", {"reason": "wrong or missing cluster token"})
                raise AuthenticationError(
                    f"refused a peer with a wrong or missing cluster token ({self.peer_name()})"
                )
            self.peer_info = dict(msg.get("info") or {})
            self._authed = True
            self._send(
                WELCOME,
                0,
                "",
                {
                    "mac": _mac(self._token, b"server", self._nonce, self._peer_nonce),
                    "info": self.info,
                },
            )
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == WELCOME and not self._is_server:
            want = _mac(self._token, b"server", self._peer_nonce, self._nonce)
            if not hmac.compare_digest(want, bytes(msg["mac"])):
                raise AuthenticationError(
                    "the server does not hold this cluster's token"
                )
            self.peer_info = dict(msg.get("info") or {})
            self._authed = True
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == REJECT:
            raise AuthenticationError(
                f"the cluster refused this connection: {msg.get('reason')}. Pass the cluster "
                "token with --token or the EMBER_AUTH_TOKEN environment variable (it is in "
                "~/.ember/auth_token on the head node)."
            )
        else:
            raise ProtocolError(f"unexpected frame kind {kind} before authentication")

    def _check_version(self, msg: dict[str, Any]) -> None:
        proto = int(msg.get("proto", -1))
        if (
            proto < MIN_COMPATIBLE_PROTOCOL
            or int(msg.get("min_proto", 1)) > PROTOCOL_VERSION
        ):
            raise VersionMismatchError(
                f"protocol version mismatch: this side speaks {PROTOCOL_VERSION} (ember "
                f"{__version__}), the peer speaks {proto} (ember {msg.get('ember')}); install the "
                "same ember version on every node"
            )

    def _fail_ready(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # mark retrieved

    # -- dispatch ---------------------------------------------------------------
    def _dispatch(
        self,
        kind: int,
        req_id: int,
        method: str,
        raw: msgspec.Raw,
        bufs: list[memoryview],
    ) -> None:
        if kind in (REPLY, ERROR):
            entry = self._pending.pop(req_id, None)
            if entry is None:
                return
            m, fut = entry
            if fut.done():
                return
            if kind == REPLY:
                fut.set_result((self._schema.decode_reply(m, raw), bufs))
            else:
                d = _any_decoder.decode(raw)
                fut.set_exception(RemoteError(d[0], d[1], d[2], d[3]))
            return
        if kind not in (REQUEST, NOTIFY):
            raise ProtocolError(f"unknown frame kind {kind}")
        handler = self.handlers.get(method)
        req = self._schema.decode_request(method, raw)
        if handler is None:
            if kind == REQUEST:
                self._send_error(req_id, ProtocolError(f"no handler for {method!r}"))
            return
        self.current_req_id = req_id
        try:
            result = handler(self, req, bufs)
        except Exception as exc:
            if kind == REQUEST:
                self._send_error(req_id, exc)
            else:
                logger.exception("notification handler %s failed", method)
            return
        if asyncio.iscoroutine(result):
            task = asyncio.get_running_loop().create_task(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._finish(t, kind, req_id, method))
        elif isinstance(result, asyncio.Future):
            # A handler may hand back a future it resolves later (no Task per request).
            result.add_done_callback(lambda f: self._finish(f, kind, req_id, method))
        elif kind == REQUEST and result is not REPLY_LATER:
            self._send_reply(req_id, result)

    def _finish(
        self, task: asyncio.Future[Any], kind: int, req_id: int, method: str
    ) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            if kind == REQUEST:
                self._send_error(req_id, ConnectionClosedError("handler cancelled"))
            return
        exc = task.exception()
        if exc is not None:
            if kind == REQUEST:
                self._send_error(req_id, exc)
            else:
                logger.error("notification handler %s failed: %r", method, exc)
            return
        if kind == REQUEST:
            self._send_reply(req_id, task.result())

    def _send_reply(self, req_id: int, result: Any) -> None:
        if self.is_closed():
            return  # the requester is gone; nobody wants the reply
        if isinstance(result, tuple):
            self._send(REPLY, req_id, "", result[0], result[1])
        else:
            self._send(REPLY, req_id, "", result)

    def _send_error(self, req_id: int, exc: BaseException) -> None:
        if self.is_closed():
            return
        try:
            payload = pickle.dumps(exc)
        except Exception:  # noqa: BLE001  (user code or user values)
            payload = b""
        tb = "".join(traceback.format_exception(exc))
        self._send(ERROR, req_id, "", [type(exc).__name__, str(exc), tb, payload])

    def _send(
        self,
        kind: int,
        req_id: int,
        method: str,
        payload: Any,
        bufs: list[Any] | tuple[Any, ...] = (),
    ) -> None:
        t = self._transport
        if t is None or t.is_closing():
            raise ConnectionLostError(f"connection to {self.peer_name()} is closed")
        parts = _frame_parts(kind, req_id, method, payload, bufs)
        with self._wlock:
            if self._backlog is not None:
                self._backlog.extend(parts)  # behind a thread's partial write
            else:
                t.writelines(parts)

    # -- replies from other threads ------------------------------------------------
    def enable_thread_writes(self) -> bool:
        """Loop thread: allow :meth:`reply_from_thread` on this connection.

        Only plain sockets qualify (a TLS transport must encrypt on the loop).
        """
        if self._direct_fd >= 0:
            return True
        t = self._transport
        if t is None or t.is_closing() or t.get_extra_info("sslcontext") is not None:
            return False
        sock = t.get_extra_info("socket")
        if sock is None:
            return False
        self._direct_fd = os.dup(sock.fileno())
        return True

    def call_from_thread(
        self, method: str, req: Any, bufs: Any, on_done: Callable[[ThreadCall], None]
    ) -> bool:
        """Send a request from a non-loop thread; ``on_done`` gets its reply on the loop.

        False (nothing sent) if the connection is closed or was not enabled
        with :meth:`enable_thread_writes`; the caller then goes through the loop.
        """
        with self._wlock:
            if self._direct_fd < 0 or self.is_closed():
                return False
            req_id = next(self._ids)
            self._pending[req_id] = (method, ThreadCall(self._loop, on_done))
            self._write_locked(_frame_parts(REQUEST, req_id, method, req, bufs))
        return True

    def reply_from_thread(self, req_id: int, result: Any) -> None:
        """Answer request ``req_id`` from a non-loop thread, without a loop hop.

        The frame is written straight to the socket when nothing is queued
        ahead of it; otherwise (or for what a full socket buffer leaves over)
        it joins a backlog the loop writes in order.  ``result`` is a message or
        ``(message, buffers)``, as a handler returns.
        """
        msg, bufs = result if isinstance(result, tuple) else (result, ())
        parts = _frame_parts(REPLY, req_id, "", msg, bufs)
        with self._wlock:
            t = self._transport
            if self._direct_fd < 0 or t is None or t.is_closing():
                return  # the requester is gone; nobody wants the reply
            self._write_locked(parts)

    def _write_locked(self, parts: list[Any]) -> None:
        """Write from a non-loop thread, holding ``_wlock``, in order with the loop."""
        if self._backlog is not None:
            self._backlog.extend(parts)
            return
        t = self._transport
        if t is not None and t.get_write_buffer_size() == 0 and len(parts) <= _MAX_IOV:
            try:
                sent = os.writev(self._direct_fd, parts)
            except (BrokenPipeError, ConnectionResetError):
                return  # the loop sees the close and fails the calls on it
            except (OSError, BufferError, TypeError, ValueError):
                sent = (
                    0  # e.g. EAGAIN, or a buffer writev takes badly: the loop writes it
                )
            parts = _unsent(parts, sent)
            if not parts:
                return
        self._backlog = parts
        self._loop.call_soon_threadsafe(self._write_backlog)

    def _write_backlog(self) -> None:
        with self._wlock:
            parts, self._backlog = self._backlog, None
            t = self._transport
            if parts and t is not None and not t.is_closing():
                t.writelines(parts)

    # -- public -----------------------------------------------------------------
    async def call(
        self,
        method: str,
        req: Any,
        bufs: list[Any] | tuple[Any, ...] = (),
        timeout: float | None = None,
    ) -> tuple[Any, list[memoryview]]:
        """Send a request and wait for ``(reply, buffers)``."""
        fut = self.call_nowait(method, req, bufs)
        if timeout is None:
            return await fut
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise RpcTimeoutError(
                f"{method} to {self.peer_name()} timed out after {timeout}s"
            ) from None

    def call_nowait(
        self, method: str, req: Any, bufs: list[Any] | tuple[Any, ...] = ()
    ) -> asyncio.Future[Any]:
        """Send a request; return the future of its ``(reply, buffers)``."""
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (method, fut)
        try:
            self._send(REQUEST, req_id, method, req, bufs)
        except Exception:
            self._pending.pop(req_id, None)
            raise
        return fut

    def notify(
        self, method: str, req: Any, bufs: list[Any] | tuple[Any, ...] = ()
    ) -> None:
        """Send a one-way message."""
        self._send(NOTIFY, 0, method, req, bufs)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._write_paused and not self.is_closed():
            w: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(w)
            await w

    def on_close(self, cb: Callable[[Connection], None]) -> None:
        """Run ``cb(conn)`` when the connection ends (at once if it has)."""
        if self.closed.done():
            cb(self)
        else:
            self._close_callbacks.append(cb)

    def write_buffer_size(self) -> int:
        t = self._transport
        if t is None or t.is_closing():
            return 0
        backlog = self._backlog
        return t.get_write_buffer_size() + (len(backlog) if backlog else 0)

    def is_closed(self) -> bool:
        return (
            self._transport is None
            or self._transport.is_closing()
            or self.closed.done()
        )

    def peer_name(self) -> str:
        if self._transport is None:
            return "<unconnected>"
        peer = self._transport.get_extra_info("peername")
        return str(peer or self._transport.get_extra_info("sockname") or "unix socket")

    def close(self) -> None:
        """Close gracefully (buffered writes are flushed)."""
        self._closing_by_us = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping buffered writes."""
        self._closing_by_us = True
        if self._transport is not None:
            self._transport.abort()


def _frame_parts(
    kind: int, req_id: int, method: str, payload: Any, bufs: Any
) -> list[Any]:
    header = _encoder.encode((kind, req_id, method, payload))
    if bufs:
        lens = [memoryview(b).nbytes for b in bufs]
        return [encode_prefix(len(header), lens), header, *bufs]
    return [encode_prefix(len(header), []), header]


def _unsent(parts: list[Any], sent: int) -> list[Any]:
    """What of ``parts`` is left after the first ``sent`` bytes went out."""
    for i, p in enumerate(parts):
        n = memoryview(p).nbytes
        if sent < n:
            rest = memoryview(p).cast("B")[sent:] if sent else p
            return [rest, *parts[i + 1 :]]
        sent -= n
    return []


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
        raise RpcTimeoutError(
            f"connecting to {address} timed out after {timeout}s"
        ) from None
    except OSError as exc:
        raise ConnectionLostError(f"cannot connect to {address}: {exc}") from exc
    return conn


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

    def _factory(self) -> Connection:
        conn = Connection(
            token=self._token,
            schema=self._schema,
            handlers=self.handlers,
            is_server=True,
            info=self._info,
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
