"""A connection to a peer that may restart: reconnect with backoff, introduce ourselves again.

Node daemons, drivers and workers reach the control service through one of
these.  When the connection is lost, calls wait (they do not fail) while a
background task reconnects with exponential backoff; once connected, the
owner's ``on_connected`` re-registers what the new peer must know (a node its
resources and workers, a driver its job), and then waiting calls are sent
again.  A request that was in flight when the link broke is sent again too,
so the peer's handlers must take a repeated request (they are idempotent by
id: actor and placement group ids, job ids, KV keys).

Notifications sent while the link is down are queued (bounded) and flushed
after ``on_connected``, except those sent with ``queue_if_down=False``
(periodic reports, such as heartbeats, that the next one replaces).

If no connection succeeds within ``give_up_after_s``, the link gives up:
waiting and later calls raise :class:`ConnectionLostError` with a message
that says what was unreachable for how long and which knob sets the wait,
and the ``on_give_up`` callback runs (a node daemon stops).  A refused token
gives up at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ember.rpc.channel import Connection
from ember.rpc.errors import AuthenticationError, ConnectionLostError, RpcError

logger = logging.getLogger(__name__)

#: notifications kept while the link is down; beyond this the oldest are dropped
MAX_QUEUED = 10_000
_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 1.0


class ReconnectingConnection:
    """Duck-types the parts of :class:`Connection` its users call."""

    def __init__(
        self,
        conn: Connection,
        reconnect: Callable[[], Awaitable[Connection]],
        *,
        what: str,
        give_up_after_s: float,
        knob: str = "EMBER_HEAD_RECONNECT_TIMEOUT_S",
        on_connected: Callable[[Connection], Awaitable[None]] | None = None,
        on_give_up: Callable[[str], None] | None = None,
    ) -> None:
        self._conn = conn
        self._reconnect = reconnect
        self._what = what
        self._give_up_after_s = give_up_after_s
        self._knob = knob
        self._on_connected = on_connected
        self._on_give_up = on_give_up
        self._up: asyncio.Event = asyncio.Event()
        self._up.set()
        self._queued: list[tuple[str, Any, Any]] = []
        self._closed = False
        self._failure = ""
        self._task: asyncio.Task[None] | None = None
        #: how many times the link came back (for statistics and tests)
        self.reconnects = 0
        conn.on_close(self._lost)

    # -- what users call --------------------------------------------------------------
    async def call(
        self,
        method: str,
        req: Any,
        bufs: list[Any] | tuple[Any, ...] = (),
        timeout: float | None = None,
    ) -> tuple[Any, list[memoryview]]:
        while True:
            conn = await self._current()
            try:
                return await conn.call(method, req, bufs, timeout)
            except ConnectionLostError:
                if self._closed or not conn.is_closed():
                    raise
                # The link broke under this call: wait for the next one, send again.

    def notify(
        self,
        method: str,
        req: Any,
        bufs: list[Any] | tuple[Any, ...] = (),
        *,
        queue_if_down: bool = True,
    ) -> None:
        if self._closed:
            raise ConnectionLostError(
                self._failure or f"the link to {self._what} is closed"
            )
        if self._up.is_set() and not self._conn.is_closed():
            try:
                self._conn.notify(method, req, bufs)
                return
            except ConnectionLostError:
                pass
        if queue_if_down:
            if len(self._queued) >= MAX_QUEUED:
                del self._queued[0]
            self._queued.append((method, req, bufs))

    def is_closed(self) -> bool:
        return self._closed

    def is_up(self) -> bool:
        return self._up.is_set() and not self._conn.is_closed()

    def peer_name(self) -> str:
        return self._conn.peer_name()

    @property
    def connection(self) -> Connection:
        """The current underlying connection (it may be closed)."""
        return self._conn

    def close(self) -> None:
        self._closed = True
        self._failure = self._failure or f"the link to {self._what} was closed"
        if self._task is not None:
            self._task.cancel()
        self._conn.close()
        self._up.set()  # wake waiters: they see _closed

    # -- reconnecting -----------------------------------------------------------------
    async def _current(self) -> Connection:
        while True:
            if self._closed:
                raise ConnectionLostError(self._failure)
            if self._up.is_set() and not self._conn.is_closed():
                return self._conn
            if self._up.is_set():  # lost, and _lost has not run yet
                self._lost(self._conn)
            await self._up.wait()

    def _lost(self, conn: Connection) -> None:
        if conn is not self._conn or self._closed or not self._up.is_set():
            return
        self._up.clear()
        logger.warning("lost the connection to %s; reconnecting", self._what)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._give_up_after_s
        delay = _FIRST_DELAY_S
        last = ""
        while not self._closed:
            conn: Connection | None = None
            try:
                conn = await self._reconnect()
                if self._on_connected is not None:
                    await self._on_connected(conn)
            except AuthenticationError as exc:
                self._give_up(f"{self._what} refused this process's token: {exc}")
                return
            except (RpcError, OSError) as exc:
                if conn is not None:
                    conn.close()
                last = str(exc) or type(exc).__name__
                if loop.time() + delay > deadline:
                    self._give_up(
                        f"{self._what} has been unreachable for "
                        f"{self._give_up_after_s:.0f}s (last error: {last}). Set "
                        f"{self._knob} to wait longer; check that the head runs "
                        "('ember status' on the head machine)."
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY_S)
                continue
            self._conn = conn
            conn.on_close(self._lost)
            self.reconnects += 1
            queued, self._queued = self._queued, []
            for method, req, bufs in queued:
                try:
                    conn.notify(method, req, bufs)
                except ConnectionLostError:
                    break
            logger.warning("reconnected to %s", self._what)
            self._up.set()
            return

    def _give_up(self, why: str) -> None:
        logger.error("%s", why)
        self._failure = why
        self._closed = True
        self._queued.clear()
        self._up.set()
        if self._on_give_up is not None:
            self._on_give_up(why)
