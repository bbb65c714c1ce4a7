"""``/api/logs`` and ``/api/logs/file``: every node's session log files, and their tails.

The files are the node daemons' own listing of their ``<session>/logs``
folders (``node.list_logs``); a file is read through its node
(``node.read_log``), which refuses names outside that folder itself.  This
module refuses first, without asking the node: a name that is absolute,
has a ``..`` part, a backslash or a NUL is 400, and a name that the node's
listing does not hold is 404.  So no request reaches a file outside the
session's logs folder, even through a node that would serve it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ember.dashboard import api_errors
from ember.dashboard.api_errors import BadRequest, NotFound
from ember.dashboard.context import DashboardContext
from ember.dashboard.links import ClusterLinks, ClusterUnavailable
from ember.protocol.messages import (
    ListLogsReply,
    ListLogsRequest,
    NodeInfo,
    ReadLogReply,
    ReadLogRequest,
)

DEFAULT_LINES = 1000
MAX_LINES = 100_000
#: the most one answer carries (its end, when the last lines are longer)
MAX_BYTES = 4 << 20


async def node_files(links: ClusterLinks, node: NodeInfo) -> list[str]:
    """The files of ``node``'s logs folder (paths relative to it, sorted)."""
    reply = await links.node(node, "node.list_logs", ListLogsRequest(glob="*"))
    assert isinstance(reply, ListLogsReply)
    return sorted(reply.files)


def check_filename(name: str) -> str:
    """``name`` if it can only name a file inside the logs folder (else BadRequest)."""
    if not name:
        raise BadRequest("filename is required")
    if (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise BadRequest(
            f"{name!r} is not a file name of the session's logs folder (no absolute "
            "paths, no '..')"
        )
    return name


def lines_of(raw: str) -> int:
    return api_errors.bounded_int("lines", raw, MAX_LINES)


async def _node(links: ClusterLinks, raw_id: str) -> NodeInfo:
    try:
        node_id = bytes.fromhex(raw_id)
    except ValueError:
        raise BadRequest(f"{raw_id!r} is not a node id (hex)") from None
    for n in await links.nodes():
        if n.node_id == node_id and node_id:
            if not n.alive:
                raise NotFound(f"node {raw_id} is dead: its logs cannot be read")
            return n
    raise NotFound(f"no node {raw_id!r} in the cluster")


async def tail(links: ClusterLinks, node: NodeInfo, name: str, lines: int) -> bytes:
    """The last ``lines`` lines of ``name`` on ``node`` (at most ``MAX_BYTES``, its end)."""
    req = ReadLogRequest(filename=name, tail_lines=lines, max_bytes=MAX_BYTES)
    reply = await links.node(node, "node.read_log", req)
    assert isinstance(reply, ReadLogReply)
    if reply.end < reply.size:  # the lines are longer than one answer: send the end
        offset = max(reply.size - MAX_BYTES, reply.start)
        req = ReadLogRequest(filename=name, offset=offset, max_bytes=MAX_BYTES)
        reply = await links.node(node, "node.read_log", req)
        assert isinstance(reply, ReadLogReply)
    return bytes(reply.data)


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    links = ctx.links

    async def logs(request: web.Request) -> web.Response:
        alive = [n for n in await links.nodes() if n.alive]

        async def files(n: NodeInfo) -> list[str] | None:
            try:
                return await node_files(links, n)
            except ClusterUnavailable:
                return None

        got = await asyncio.gather(*(files(n) for n in alive))
        out: dict[str, Any] = {
            n.node_id.hex(): f for n, f in zip(alive, got, strict=True) if f is not None
        }
        return web.json_response({"nodes": out})

    async def log_file(request: web.Request) -> web.Response:
        name = check_filename(request.query.get("filename", ""))
        lines = lines_of(request.query.get("lines", str(DEFAULT_LINES)))
        node = await _node(links, request.query.get("node_id", ""))
        if name not in await node_files(links, node):
            raise NotFound(f"node {node.node_id.hex()} has no log file {name!r}")
        data = await tail(links, node, name, lines)
        return web.Response(body=data, content_type="text/plain", charset="utf-8")

    api_errors.install(app)
    app.router.add_get("/api/logs", logs)
    app.router.add_get("/api/logs/file", log_file)
