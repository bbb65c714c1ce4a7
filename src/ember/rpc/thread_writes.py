"""Requests and replies written from threads other than the loop's (a Connection mixin).

An executing thread answers its request (``reply_from_thread``) and a
submitting thread sends a call (``call_from_thread``) without a loop hop: the
frame goes straight to the socket with ``os.writev`` on a private dup of its
descriptor when nothing is queued ahead of it.  Whatever a full socket buffer
leaves over, or anything written while the transport already holds bytes,
joins a backlog the loop writes in order, so the loop's write buffer (and its
high-water mark, see ``Connection.drain``) bounds these writes as well.  All
writes happen under ``_wlock``; the loop closing its descriptor can never make
a thread write into a reused one.  Only plain sockets qualify (TLS must
encrypt on the loop).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

from ember.rpc.frame_mac import FrameSigner
from ember.rpc.wire import MAX_IOV, REPLY, REQUEST, frame_parts, unsent


class ThreadCall:
    """The reply slot of a request sent with ``Connection.call_from_thread``.

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


class ThreadWrites:
    """Writes from non-loop threads, in order with the loop's own writes."""

    # State owned by Connection.__init__.
    _transport: asyncio.Transport | None
    _loop: asyncio.AbstractEventLoop
    _pending: dict[int, tuple[str, Any]]
    _ids: itertools.count[int]
    _wlock: threading.Lock
    _direct_fd: int
    _backlog: list[Any] | None
    _signer: FrameSigner | None

    def is_closed(self) -> bool:
        raise NotImplementedError

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
        Push-class calls only: no deadline, the call ends with the connection.
        """
        with self._wlock:
            if self._direct_fd < 0 or self.is_closed():
                return False
            req_id = next(self._ids)
            self._pending[req_id] = (method, ThreadCall(self._loop, on_done))
            self._write_locked(frame_parts(REQUEST, req_id, method, req, bufs))
        return True

    def reply_from_thread(self, req_id: int, result: Any) -> None:
        """Answer request ``req_id`` from a non-loop thread, without a loop hop.

        The frame is written straight to the socket when nothing is queued
        ahead of it; otherwise (or for what a full socket buffer leaves over)
        it joins a backlog the loop writes in order.  ``result`` is a message or
        ``(message, buffers)``, as a handler returns.
        """
        msg, bufs = result if isinstance(result, tuple) else (result, ())
        parts = frame_parts(REPLY, req_id, "", msg, bufs)
        with self._wlock:
            t = self._transport
            if self._direct_fd < 0 or t is None or t.is_closing():
                return  # the requester is gone; nobody wants the reply
            self._write_locked(parts)

    def _write_locked(self, parts: list[Any]) -> None:
        """Write from a non-loop thread, holding ``_wlock``, in order with the loop."""
        signer = self._signer
        if signer is not None:
            parts.append(signer.tag(parts))  # tagged in the order frames go out
        if self._backlog is not None:
            self._backlog.extend(parts)
            return
        t = self._transport
        if t is not None and t.get_write_buffer_size() == 0 and len(parts) <= MAX_IOV:
            try:
                sent = os.writev(self._direct_fd, parts)
            except (BrokenPipeError, ConnectionResetError):
                return  # the loop sees the close and fails the calls on it
            except (OSError, BufferError, TypeError, ValueError):
                sent = (
                    0  # e.g. EAGAIN, or a buffer writev takes badly: the loop writes it
                )
            parts = unsent(parts, sent)
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
