"""Dispatch of authenticated frames, and the loop-side writes (a Connection mixin).

A REPLY or ERROR resolves the pending call it answers.  A REQUEST or NOTIFY
runs its handler: ``handler(conn, request, buffers)``, sync or async, or
returning a future it resolves later, or :data:`REPLY_LATER` when another
thread will answer (:mod:`ember.rpc.thread_writes`).  A request whose payload
does not decode against its method's struct gets an ERROR reply and the
connection stays up; a method unknown to the schema raises
:class:`ProtocolError` (the connection closes).

This is a mixin of :class:`ember.rpc.channel.Connection` (not a separate
object) so that the per-frame path costs no extra indirection.

Each handled request and notification is timed into :data:`HANDLER_TIMES`:
per method, plain counts per latency bucket and a sum (a ``perf_counter``
pair, one ``bisect`` and two list updates; no objects, no locks: only the
loop thread dispatches).  ``ember.metrics`` turns them into histograms when
scraped.  ``EMBER_METRICS=0`` turns the timing off.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import struct
import threading
from bisect import bisect_left
from time import perf_counter
from typing import Any

import msgspec

from ember.rpc.errors import ConnectionClosedError, ConnectionLostError, ProtocolError
from ember.rpc.frame_mac import FrameSigner
from ember.rpc.wire import (
    ERROR,
    NOTIFY,
    REPLY,
    REQUEST,
    Schema,
    error_body,
    frame_parts,
    remote_error,
)

logger = logging.getLogger(__name__)


class _ReplyLater:
    """Returned by a handler that will answer with ``Connection.reply_from_thread``."""


#: see :class:`_ReplyLater`
REPLY_LATER: Any = _ReplyLater()

#: upper bounds (seconds) of the handler-latency buckets; a last bucket is +Inf
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.00001,
    0.00005,
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    60.0,
)
#: method -> [count of bucket 0, ..., count of +Inf bucket, sum of seconds]
HANDLER_TIMES: dict[str, list[float]] = {}
#: time handlers at all (``EMBER_METRICS=0``: no)
TIMING = os.environ.get("EMBER_METRICS", "1") != "0"


def record_handler_time(method: str, seconds: float) -> None:
    """Count one handled call of ``method`` that took ``seconds``."""
    row = HANDLER_TIMES.get(method)
    if row is None:
        row = HANDLER_TIMES[method] = [0.0] * (len(LATENCY_BOUNDS_S) + 2)
    row[bisect_left(LATENCY_BOUNDS_S, seconds)] += 1
    row[-1] += seconds


class Dispatch:
    """Runs handlers for incoming requests and writes frames from the loop thread."""

    # State owned by Connection.__init__.
    handlers: dict[str, Any]
    current_req_id: int
    _schema: Schema
    _transport: asyncio.Transport | None
    _pending: dict[int, tuple[str, Any]]
    _ids: itertools.count[int]
    _tasks: set[asyncio.Future[Any]]
    _wlock: threading.Lock
    _backlog: list[Any] | None
    _signer: FrameSigner | None

    def is_closed(self) -> bool:
        raise NotImplementedError

    def peer_name(self) -> str:
        raise NotImplementedError

    def peer_pid(self) -> int:
        """The pid of the process at the other end of a unix socket (0: unknown, TCP)."""
        t = self._transport
        sock = t.get_extra_info("socket") if t is not None else None
        if sock is None or sock.family != socket.AF_UNIX:
            return 0
        try:
            creds = sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
        except (OSError, AttributeError):
            return 0
        pid: int = struct.unpack("3i", creds)[0]
        return pid

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
                fut.set_exception(remote_error(raw))
            return
        if kind not in (REQUEST, NOTIFY):
            raise ProtocolError(f"unknown frame kind {kind}")
        handler = self.handlers.get(method)
        try:
            req = self._schema.decode_request(method, raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            # The frame was whole: answer this request, keep the connection.
            bad = ProtocolError(f"malformed {method} request: {exc}")
            if kind == REQUEST:
                self._send_error(req_id, bad)
            else:
                logger.warning("dropped from %s: %s", self.peer_name(), bad)
            return
        if handler is None:
            if kind == REQUEST:
                self._send_error(req_id, ProtocolError(f"no handler for {method!r}"))
            return
        self.current_req_id = req_id
        t0 = perf_counter() if TIMING else 0.0
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
            task.add_done_callback(lambda t: self._finish(t, kind, req_id, method, t0))
        elif isinstance(result, asyncio.Future):
            # A handler may hand back a future it resolves later (no Task per request).
            result.add_done_callback(
                lambda f: self._finish(f, kind, req_id, method, t0)
            )
        else:
            if t0:
                # (REPLY_LATER: the time to hand the call over, not to answer it)
                record_handler_time(method, perf_counter() - t0)
            if kind == REQUEST and result is not REPLY_LATER:
                self._send_reply(req_id, result)

    def _finish(
        self,
        task: asyncio.Future[Any],
        kind: int,
        req_id: int,
        method: str,
        t0: float = 0.0,
    ) -> None:
        if t0:
            record_handler_time(method, perf_counter() - t0)
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
        self._send(ERROR, req_id, "", error_body(exc))

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
        parts = frame_parts(kind, req_id, method, payload, bufs)
        with self._wlock:
            signer = self._signer
            if signer is not None:
                parts.append(signer.tag(parts))
            if self._backlog is not None:
                self._backlog.extend(parts)  # behind a thread's partial write
            else:
                t.writelines(parts)
