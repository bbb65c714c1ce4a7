"""Connection: authenticated, bidirectional request/reply over one stream.

Data flow::

    user thread --call_threadsafe--> loop thread
                                        | Connection.call(): id, future, write frame
                                        v
    transport  ==== frames ====>  peer Connection.data_received -> FrameDecoder
                                        | REQUEST: handler(conn, req, bufs)
                                        v
    transport  <=== REPLY/ERROR ==  peer writes reply; our future resolves

Theory of operation: both ends run a handshake first (:mod:`ember.rpc.handshake`)
under a deadline, reading nothing but small handshake frames until the peer
has authenticated.  After that either side may send REQUEST and NOTIFY frames
(:mod:`ember.rpc.dispatch`); a malformed frame closes this one connection
(logged) and fails its pending requests with :class:`ConnectionLostError`.
Every :meth:`Connection.call` has a deadline (its method's class's, see
:mod:`ember.rpc.limits`, unless the caller passes one) and waits for the
write buffer to drain below the high-water mark before it writes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from ember.rpc.dispatch import Dispatch
from ember.rpc.errors import (
    AuthenticationError,
    ConnectionClosedError,
    ConnectionLostError,
    ProtocolError,
    RpcTimeoutError,
)
from ember.rpc.frame_mac import TAG_BYTES, FrameSigner, FrameVerifier
from ember.rpc.framing import FrameDecoder
from ember.rpc.handshake import PRE_AUTH_MAX_FRAME_BYTES, Handshake
from ember.rpc.limits import Gate
from ember.rpc.thread_writes import ThreadCall, ThreadWrites
from ember.rpc.wire import NOTIFY, REQUEST, Schema, header_decoder

logger = logging.getLogger(__name__)

Handler = Callable[["Connection", Any, list[memoryview]], Any]


class Connection(Dispatch, ThreadWrites, asyncio.Protocol):
    """One authenticated stream. Create with :func:`connect` or a server."""

    def __init__(
        self,
        *,
        token: bytes,
        schema: Schema,
        handlers: dict[str, Handler],
        is_server: bool,
        info: dict[str, Any] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self._schema = schema
        self._limits = schema.limits
        self._deadlines = schema.deadlines
        self.handlers = handlers
        self._is_server = is_server
        self.info = dict(info or {})
        self.peer_info: dict[str, Any] = {}
        self._handshake: Handshake | None = Handshake(
            token, is_server=is_server, info=self.info
        )
        self._gate = gate
        self._hs_timer: asyncio.TimerHandle | None = None
        self._decoder = FrameDecoder(max_frame_bytes=PRE_AUTH_MAX_FRAME_BYTES)
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, tuple[str, asyncio.Future[Any] | ThreadCall]] = {}
        self._ids = itertools.count(1)
        self._loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._close_callbacks: list[Callable[[Connection], None]] = []
        self._closing_by_us = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        #: id of the request whose handler is running (loop thread)
        self.current_req_id = 0
        # Writes from other threads (see ember.rpc.thread_writes).
        self._wlock = threading.Lock()
        self._direct_fd = -1
        self._backlog: list[Any] | None = None
        #: tags every frame sent after the handshake (under _wlock, in send order)
        self._signer: FrameSigner | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        #: arbitrary per-connection state owned by the server using it
        self.state: dict[str, Any] = {}

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        self._transport = t
        high = self._limits.write_high_water_bytes
        t.set_write_buffer_limits(high=high, low=high // 4)
        if not self._is_server or self._handshake is None:
            return  # a client's handshake is bounded by connect()'s timeout
        self._hs_timer = self._loop.call_later(
            self._limits.handshake_deadline_s, self._handshake_expired
        )
        if self._gate is not None:
            peer = transport.get_extra_info("peername")
            source = peer[0] if isinstance(peer, tuple) and peer else ""
            self._gate.admit(self, source)
        kind, hello = self._handshake.hello()
        self._send(kind, 0, "", hello)

    def data_received(self, data: bytes) -> None:
        try:
            for header, bufs in self._decoder.feed(data):
                kind, req_id, method, raw = header_decoder.decode(header)
                if self._handshake is not None:
                    self._handshake_frame(kind, raw)
                    continue
                self._dispatch(kind, req_id, method, raw, bufs)
        except AuthenticationError as exc:
            self._refuse(exc, "wrong token or version")
        except (ProtocolError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            if self._handshake is not None and self._is_server:
                self._refuse(exc, "malformed handshake")
                return
            logger.warning(
                "closing connection %s: bad frame: %s", self.peer_name(), exc
            )
            self._fail_ready(
                exc if isinstance(exc, ProtocolError) else ProtocolError(str(exc))
            )
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_handshake()
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
        self._wake_drainers()
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
        self._wake_drainers()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # -- handshake --------------------------------------------------------------
    def _handshake_frame(self, kind: int, raw: msgspec.Raw) -> None:
        hs = self._handshake
        assert hs is not None
        try:
            out = hs.receive(kind, raw)
        except AuthenticationError:
            if hs.last_words is not None:
                self._send(hs.last_words[0], 0, "", hs.last_words[1])
            raise
        for k, payload in out:
            self._send(k, 0, "", payload)
        if hs.done:
            self.peer_info = hs.peer_info
            tx, rx = hs.keys
            if frames_need_macs(self._transport):
                with self._wlock:
                    self._signer = FrameSigner(tx)
                self._decoder.authenticate(FrameVerifier(rx), TAG_BYTES)
            self._end_handshake()
            self._decoder.max_frame_bytes = self._limits.max_frame_bytes
            if not self.ready.done():
                self.ready.set_result(None)

    def _end_handshake(self) -> None:
        self._handshake = None
        if self._hs_timer is not None:
            self._hs_timer.cancel()
            self._hs_timer = None
        if self._gate is not None:
            self._gate.release(self)

    def _handshake_expired(self) -> None:
        self._hs_timer = None
        if self._handshake is None:
            return
        deadline = self._limits.handshake_deadline_s
        self._refuse(
            RpcTimeoutError(f"handshake with {self.peer_name()} took over {deadline}s"),
            "handshake deadline passed",
        )

    def _refuse(self, exc: Exception, reason: str) -> None:
        """End a connection whose peer failed to authenticate."""
        if self._gate is not None:
            self._gate.refusals.note(reason)
        self._fail_ready(exc)
        self.abort()

    def _fail_ready(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # mark retrieved

    # -- public -----------------------------------------------------------------
    async def call(
        self,
        method: str,
        req: Any,
        bufs: list[Any] | tuple[Any, ...] = (),
        timeout: float | None = None,
    ) -> tuple[Any, list[memoryview]]:
        """Send a request and wait for ``(reply, buffers)``.

        Without ``timeout``, the deadline of the method's class applies
        (:mod:`ember.rpc.limits`); past it, :class:`RpcTimeoutError`.
        """
        if timeout is None:
            timeout = self._deadlines.get(method)
            if timeout is not None and timeout < 0:  # a long poll: its bound + grace
                own = getattr(req, "timeout_s", 0.0)
                timeout = own - timeout if own > 0 else None
        if self._write_paused:
            await self._drain_within(method, timeout)
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending[req_id] = (method, fut)
        try:
            self._send(REQUEST, req_id, method, req, bufs)
        except Exception:
            self._pending.pop(req_id, None)
            raise
        if timeout is None:
            return await fut
        timer = self._loop.call_later(timeout, self._expire, req_id, timeout)
        try:
            return await fut
        finally:
            timer.cancel()

    async def _drain_within(self, method: str, timeout: float | None) -> None:
        if timeout is None:
            await self.drain()
            return
        try:
            async with asyncio.timeout(timeout):
                await self.drain()
        except TimeoutError:
            raise RpcTimeoutError(
                f"{method} to {self.peer_name()} could not be written within "
                f"{timeout}s (the peer is not reading)"
            ) from None

    def _expire(self, req_id: int, timeout: float) -> None:
        entry = self._pending.pop(req_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_exception(
                RpcTimeoutError(
                    f"{entry[0]} to {self.peer_name()} timed out after {timeout}s"
                )
            )

    def call_nowait(
        self, method: str, req: Any, bufs: list[Any] | tuple[Any, ...] = ()
    ) -> asyncio.Future[Any]:
        """Send a request; return the future of its ``(reply, buffers)``.

        No deadline is applied (the caller owns the wait): for push-class calls.
        """
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = self._loop.create_future()
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
        """Wait until the write buffer is below its low-water mark (or closed)."""
        if self._write_paused and not self.is_closed():
            w: asyncio.Future[None] = self._loop.create_future()
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
        try:
            peer = self._transport.get_extra_info("peername")
            return str(
                peer or self._transport.get_extra_info("sockname") or "unix socket"
            )
        except (OSError, ValueError):
            # uvloop asks the closed socket (fd -1): a closed connection's error
            # must stay a ConnectionLostError, not become a ValueError here
            return "a closed connection"

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


def frames_need_macs(transport: asyncio.BaseTransport | None) -> bool:
    """Whether a connection's frames carry MACs: TCP without TLS only.

    A TCP path (loopback included) can be relayed by anyone who reaches the
    port, so its frames are authenticated. A Unix socket lives in its owner's
    0700 folder and is 0600 itself: only the owner and root can reach it, and
    they hold the token anyway. TLS authenticates every record itself. Both
    ends see the same transport, so they agree without a message.
    """
    if transport is None:
        return True
    if transport.get_extra_info("ssl_object") is not None:
        return False
    sock = transport.get_extra_info("socket")
    return sock is None or sock.family != socket.AF_UNIX
