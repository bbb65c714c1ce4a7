"""Reaching a cluster's control service and node daemons for a state query.

From a process with a core worker (a driver after ``init()``, or a worker),
its own connections are used, on its loop.  Otherwise the control service is
found as ``ember status`` finds it (``address``, ``EMBER_ADDRESS``, or the
cluster recorded on this machine), with the token from ``EMBER_AUTH_TOKEN``,
the cluster record or the cluster's token file, and one connection is opened
per node asked.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ember.api import runtime_access
from ember.common import session, tls
from ember.common.config import Config
from ember.protocol.messages import SCHEMA, Empty, GetNodesReply, NodeInfo
from ember.rpc.connection import Connection, connect
from ember.rpc.errors import RpcError
from ember.runtime import current

T = TypeVar("T")

GetNodes = Callable[[], Awaitable[GetNodesReply]]
CallNode = Callable[[NodeInfo, str, Any, float], Awaitable[Any]]


class StateApiError(RuntimeError):
    """A state query could not be answered (Ray's ``RayStateApiException``)."""


def resolve(address: str | None, need_token: bool = True) -> tuple[str, str]:
    """``(control address, token)`` of the cluster at ``address`` (None: this machine's)."""
    if not address or address == "auto":
        address = os.environ.get(session.ADDRESS_ENV, "") or None
    rec = session.read_cluster_record()
    if not address or address == "auto":
        if rec is None:
            raise StateApiError(
                "No ember cluster is running on this machine (no cluster record): call "
                "ember.init() first, start one with 'ember start --head', or pass "
                "address='HOST:PORT'."
            )
        control = str(rec["control_address"])
    else:
        control = address.removeprefix("ember://").removeprefix("ray://")
        if not control.startswith(("tcp:", "unix:")):
            if ":" not in control:
                raise ValueError(f"address {address!r} is not HOST:PORT")
            control = f"tcp:{control}"
    if not need_token:
        return control, ""
    token = os.environ.get(session.TOKEN_ENV, "")
    if not token and rec is not None and rec.get("control_address") == control:
        token = str(rec.get("token") or "")
    token = token or session.read_token(control)
    if not token:
        raise StateApiError(
            f"No token for the cluster at {control}: set EMBER_AUTH_TOKEN or copy the "
            "head's token file (ember start --head prints where it is)."
        )
    return control, token


def run_on_cluster(
    address: str | None,
    work: Callable[[GetNodes, CallNode], Awaitable[T]],
    timeout: float,
    token: str | None = None,
) -> T:
    """Run ``work(get_nodes, call_node)`` against the cluster; its result.

    ``token``: the cluster token, when the caller found it (``--token-file``).
    """
    cw: Any = current.worker_or_none()
    rt = runtime_access.current_or_none()
    if cw is None and rt is not None and not address:
        raise StateApiError(
            "ember runs in local mode (init(local_mode=True)): there is no cluster whose "
            "state could be listed."
        )
    if cw is not None and getattr(cw, "control", None) is not None and not address:
        try:
            return cw.run(  # type: ignore[no-any-return]
                _with_core_worker(cw, work, timeout), timeout=timeout + 5
            )
        except (RpcError, OSError, TimeoutError) as exc:
            raise StateApiError(f"Cannot query the ember cluster: {exc}") from exc
    control, found = resolve(address, need_token=not token)
    tls.use_for_cluster(control)
    return _run_sync(_standalone(control, (token or found).encode(), work, timeout))


async def _with_core_worker(cw: Any, work: Callable[..., Awaitable[T]], timeout: float) -> T:
    async def get_nodes() -> GetNodesReply:
        reply, _ = await cw.control.call("control.get_nodes", Empty(), timeout=timeout)
        return reply  # type: ignore[no-any-return]

    async def call_node(info: NodeInfo, method: str, req: Any, t: float) -> Any:
        conn = await cw.links.connect_node(info.node_id, info.address or info.unix)
        reply, _ = await conn.call(method, req, timeout=t)
        return reply

    return await work(get_nodes, call_node)


async def _standalone(
    control: str, token: bytes, work: Callable[..., Awaitable[T]], timeout: float
) -> T:
    connect_s = min(Config.from_env().connect_timeout_s, timeout)
    opened: dict[str, asyncio.Task[Connection]] = {}

    def conn_to(address: str) -> asyncio.Task[Connection]:
        task = opened.get(address)
        if task is None:
            task = opened[address] = asyncio.ensure_future(
                connect(address, token=token, schema=SCHEMA, timeout=connect_s)
            )
        return task

    async def get_nodes() -> GetNodesReply:
        conn = await conn_to(control)
        reply, _ = await conn.call("control.get_nodes", Empty(), timeout=timeout)
        return reply  # type: ignore[no-any-return]

    async def call_node(info: NodeInfo, method: str, req: Any, t: float) -> Any:
        conn = await conn_to(info.address or info.unix)
        reply, _ = await conn.call(method, req, timeout=t)
        return reply

    try:
        return await work(get_nodes, call_node)
    except (RpcError, OSError) as exc:
        raise StateApiError(
            f"Cannot query the ember cluster at {control.removeprefix('tcp:')}: {exc}"
        ) from exc
    finally:
        for task in opened.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
            else:
                task.cancel()


def _run_sync(coro: Awaitable[T]) -> T:
    """Run ``coro`` to its end from synchronous code (even under a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)  # type: ignore[arg-type]
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, name="ember-state-query")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
