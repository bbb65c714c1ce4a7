"""How a state API call reaches the cluster: the connection, the token, the call.

Theory of operation.  :class:`StateClient` finds the cluster once, when it
is made:

- ``address`` None (or ``"auto"``) in a process that runs a core worker (a
  driver after ``ember.init()``, or a task or actor): that core worker's own
  link to the control service is used; nothing new is opened.
- otherwise the control service is found as ``init(address=...)`` finds it
  (``api/join.choose``: ``EMBER_ADDRESS``/``RAY_ADDRESS``, the cluster
  recorded on this machine, or ``HOST:PORT``), with the same token (the
  record's, ``EMBER_AUTH_TOKEN``, or the cluster's token file) and TLS
  files; each call then opens one authenticated connection and closes it.

:meth:`StateClient.run` runs a coroutine that gets a :class:`Links` (the
control link and authenticated connections to any node daemon or core
worker, closed afterwards), so modules that ask nodes or workers (objects,
logs) share this resolution.  :meth:`StateClient.call` is one control call.
Failures raise :class:`~ember.util.state.exception.RayStateApiException`
(or its ``ServerUnavailable`` when the cluster cannot be reached).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ember.common import session, tls
from ember.protocol.messages import SCHEMA, ListStateReply, ListStateRequest
from ember.rpc.connection import Connection, connect
from ember.rpc.errors import AuthenticationError, RemoteError, RpcError
from ember.runtime import current
from ember.util.state.exception import RayStateApiException, ServerUnavailable

T = TypeVar("T")

DEFAULT_RPC_TIMEOUT = 30


class Links:
    """Connections a state query uses; the ones it opened close when it ends."""

    def __init__(self, control_address: str, token: bytes, control: Any = None):
        self.control_address = control_address
        self.token = token
        self._control = control  # a core worker's ReconnectingConnection
        self._opened: dict[str, Connection] = {}

    async def connect(self, address: str) -> Connection:
        """An authenticated connection to ``address`` (``tcp:``/``unix:``), cached."""
        conn = self._opened.get(address)
        if conn is None or conn.is_closed():
            conn = await connect(address, token=self.token, schema=SCHEMA, timeout=10)
            self._opened[address] = conn
        return conn

    async def call_control(
        self, method: str, req: Any, timeout: float | None = None
    ) -> Any:
        """One call to the control service; its reply."""
        link: Any = self._control
        if link is None:
            link = await self.connect(self.control_address)
        reply, _ = await link.call(method, req, timeout=timeout)
        return reply

    def close(self) -> None:
        for conn in self._opened.values():
            conn.close()
        self._opened.clear()


class StateClient:
    """Where this process's state calls go (see the module's docstring)."""

    def __init__(self, address: str | None = None) -> None:
        cw = current.worker_or_none()
        self._cw = None
        if cw is not None and address in (None, "auto") and cw.control is not None:
            self._cw = cw
            self.control_address = str(cw.control_address)
            self.token = bytes(cw.token)
            return
        # Imported here: the CLI's ``ember list`` needs no runtime loaded to start.
        from ember.api.join import choose

        try:
            choice = choose(address or "auto", own_node=False)
        except (ConnectionError, ValueError, NotImplementedError) as exc:
            raise ServerUnavailable(str(exc)) from exc
        if not choice.control:
            raise ServerUnavailable(
                "No ember cluster to ask: start one ('ember start --head' or "
                "ember.init()), or pass address='HOST:PORT'."
            )
        self.control_address = choice.control
        self.token = _token_for(choice).encode()

    def run(self, fn: Callable[[Links], Awaitable[T]], timeout: float) -> T:
        """Run ``fn(links)`` against the cluster, blocking for up to ``timeout`` s."""
        cw = self._cw
        if cw is not None:
            links = Links(self.control_address, self.token, cw.control)
            try:
                return cw.run(self._guarded(fn, links, timeout), timeout=timeout + 5)
            finally:
                cw.loop_thread.call(links.close)
        tls.use_for_cluster(self.control_address)
        links = Links(self.control_address, self.token)

        async def main() -> T:
            try:
                return await self._guarded(fn, links, timeout)
            finally:
                links.close()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        # Called from inside an event loop (an async actor, a notebook): use a thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, main()).result()

    async def _guarded(
        self, fn: Callable[[Links], Awaitable[T]], links: Links, timeout: float
    ) -> T:
        where = self.control_address.removeprefix("tcp:")
        try:
            return await asyncio.wait_for(fn(links), timeout)
        except TimeoutError as exc:
            raise RayStateApiException(
                f"The state query to the ember cluster at {where} did not finish "
                f"within {timeout} s (raise timeout= or --timeout)."
            ) from exc
        except AuthenticationError as exc:
            raise ServerUnavailable(
                f"The ember cluster at {where} refused this process's cluster token: "
                "set EMBER_AUTH_TOKEN, or copy the head's token file here."
            ) from exc
        except RemoteError as exc:
            raise RayStateApiException(
                f"The control service at {where} could not answer: {exc}"
            ) from exc
        except (RpcError, OSError) as exc:
            raise ServerUnavailable(
                f"Cannot reach the ember control service at {where}: {exc}"
            ) from exc

    def call(self, method: str, req: Any, timeout: float = DEFAULT_RPC_TIMEOUT) -> Any:
        """One control-service call; its reply."""
        return self.run(lambda links: links.call_control(method, req, timeout), timeout)

    def list_rows(
        self, req: ListStateRequest, timeout: float = DEFAULT_RPC_TIMEOUT
    ) -> ListStateReply:
        """``control.list_tasks`` or ``control.list_state`` for ``req.resource``."""
        method = (
            "control.list_tasks" if req.resource == "tasks" else "control.list_state"
        )
        reply = self.call(method, req, timeout)
        assert isinstance(reply, ListStateReply)
        return reply


def _token_for(choice: Any) -> str:
    """The token for the chosen cluster, found as ``init()`` finds it."""
    control = choice.control
    rec = choice.record
    token = str(rec.get("token", "")) if rec is not None else ""
    token = token or os.environ.get(session.TOKEN_ENV, "")
    if not token:
        here = session.read_cluster_record()
        if here is not None and here.get("control_address") == control:
            token = str(here.get("token", ""))
    tcp = control.startswith("tcp:")
    token = token or session.read_token(control if tcp else None)
    if not token:
        where = session.token_path(control if tcp else None)
        raise ServerUnavailable(
            f"No cluster token for {choice.given or control}: set EMBER_AUTH_TOKEN, or "
            f"copy the head's token file to {where} (ember start --head prints its path)."
        )
    return token
