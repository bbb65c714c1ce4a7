"""The dashboard's state API: cluster, nodes, actors, tasks, timeline, placement groups, Grafana.

Every handler asks the cluster through ``ctx.links`` (async RPC on the
dashboard's own loop: a slow cluster delays one answer, never the server)
and shapes the answer with :mod:`ember.dashboard.rows`.  Lists come from
the control service's state tables (``control.list_state`` /
``control.list_tasks``, the rows of ``ember.util.state``), each kind fetched
at most once a second whatever the number of pages polling
(:class:`StateRows`).  A cluster that does not answer gives 503 with
``{"error": ...}``; bad query parameters give 400.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ember._version import __version__
from ember.common.chrome_trace import chrome_trace
from ember.dashboard import api_errors, rows
from ember.dashboard.api_errors import BadRequest, NotFound
from ember.dashboard.context import DashboardContext
from ember.dashboard.history import history_of, process_cpu_percent
from ember.dashboard.links import ClusterLinks, ClusterUnavailable
from ember.dashboard.logs_api import node_files
from ember.protocol.messages import (
    Empty,
    ListPlacementGroupsReply,
    ListStateReply,
    ListStateRequest,
    StateFilter,
    SystemStatsReply,
)

#: the most rows one list asks the control service for
MAX_ROWS = 10_000
DEFAULT_LIMIT = 100
CACHE_S = 1.0


class StateRows:
    """``control.list_state`` rows, each query answered from a cache for ``CACHE_S``."""

    def __init__(
        self, links: ClusterLinks, clock: Callable[[], float] = time.monotonic
    ):
        self._links = links
        self._clock = clock
        self._cache: dict[
            tuple[Any, ...], tuple[float, asyncio.Future[ListStateReply]]
        ] = {}

    async def query(
        self,
        resource: str,
        filters: tuple[tuple[str, Any], ...] = (),
        limit: int = MAX_ROWS,
    ) -> ListStateReply:
        key = (resource, filters, limit)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return await asyncio.shield(hit[1])
        for k in [k for k, (t, _) in self._cache.items() if now - t >= CACHE_S]:
            del self._cache[k]
        fut = asyncio.ensure_future(self._fetch(resource, filters, limit))
        self._cache[key] = (now, fut)
        try:
            return await asyncio.shield(fut)
        except ClusterUnavailable:
            self._cache.pop(key, None)
            raise

    async def _fetch(
        self, resource: str, filters: tuple[tuple[str, Any], ...], limit: int
    ) -> ListStateReply:
        req = ListStateRequest(
            resource=resource,
            filters=[StateFilter(key=k, predicate="=", value=v) for k, v in filters],
            limit=limit,
            detail=True,
        )
        method = "control.list_tasks" if resource == "tasks" else "control.list_state"
        reply = await self._links.control(method, req)
        assert isinstance(reply, ListStateReply)
        return reply

    async def rows(
        self, resource: str, filters: tuple[tuple[str, Any], ...] = ()
    ) -> list[dict[str, Any]]:
        return list((await self.query(resource, filters)).rows)


def limit_of(request: web.Request, default: int = DEFAULT_LIMIT) -> int:
    raw = request.query.get("limit", str(default))
    return api_errors.bounded_int("limit", raw, MAX_ROWS)


def node_id_of(raw: str) -> bytes:
    try:
        node_id = bytes.fromhex(raw)
    except ValueError:
        raise BadRequest(f"{raw!r} is not a node id (hex)") from None
    if not node_id:
        raise BadRequest("node_id is required")
    return node_id


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    links = ctx.links
    state = ctx.extras.setdefault("state_rows", StateRows(links))
    history = history_of(ctx)
    session_name = os.path.basename(ctx.session_dir.rstrip("/"))

    async def node_stats(node: Any) -> SystemStatsReply | None:
        try:
            reply = await links.node(node, "node.get_system_stats", Empty(), timeout=4)
        except ClusterUnavailable:
            return None
        return reply if isinstance(reply, SystemStatsReply) else None

    def workers_of(node_hex: str) -> int:
        try:
            return len(history.readings(node_hex)[1].processes)
        except KeyError:
            return 0

    async def cluster(request: web.Request) -> web.Response:
        nodes, tasks, actors, jobs = await asyncio.gather(
            links.nodes(),
            state.rows("tasks"),
            state.rows("actors"),
            state.rows("jobs"),
        )
        total, free = rows.resource_sums(nodes)
        return web.json_response(
            {
                "resources_total": total,
                "resources_available": free,
                "nodes_alive": sum(1 for n in nodes if n.alive),
                "nodes_dead": sum(1 for n in nodes if not n.alive),
                "tasks_by_state": rows.count_by(tasks, "state"),
                "actors_by_state": rows.count_by(actors, "state"),
                "jobs": rows.recent_jobs(jobs),
                "session_name": session_name,
                "ember_version": __version__,
                "grafana_host": ctx.grafana_host,
            }
        )

    async def nodes(request: web.Request) -> web.Response:
        found = await links.nodes()
        return web.json_response(
            {
                "nodes": [
                    rows.node_row(
                        n, history.latest(n.node_id.hex()), workers_of(n.node_id.hex())
                    )
                    for n in found
                ]
            }
        )

    async def node(request: web.Request) -> web.Response:
        node_id = node_id_of(request.match_info["node_id"])
        found = [n for n in await links.nodes() if n.node_id == node_id]
        if not found:
            raise NotFound(f"no node {node_id.hex()} in the cluster")
        n, hexid = found[0], node_id.hex()
        seen, actors, running = await asyncio.gather(
            state.rows("workers", (("node_id", hexid),)),
            state.rows("actors", (("node_id", hexid),)),
            state.rows("tasks", (("node_id", hexid), ("state", "RUNNING"))),
        )
        stats = await node_stats(n) if n.alive else None
        files: list[str] = []
        if n.alive:
            files = await node_files(links, n)
        try:
            prev = history.readings(hexid)[1]
        except KeyError:
            prev = None
        cpu = process_cpu_percent(prev, stats) if stats is not None else {}
        classes = {
            int(a["pid"]): str(a["class_name"])
            for a in actors
            if a.get("pid") and a.get("state") == "ALIVE"
        }
        names = {
            str(t["worker_id"]): str(t["name"]) for t in running if t.get("worker_id")
        }
        procs = stats.processes if stats is not None else []
        return web.json_response(
            {
                "node": rows.node_row(n, history.latest(hexid), len(procs)),
                "workers": rows.worker_rows(procs, cpu, seen, classes, names),
                "logs": files,
            }
        )

    async def actors(request: web.Request) -> web.Response:
        limit = limit_of(request)
        found = await state.rows("actors")
        return web.json_response({"actors": [rows.actor_row(r) for r in found[:limit]]})

    async def tasks(request: web.Request) -> web.Response:
        limit = limit_of(request)
        filters = tuple(
            (key, request.query[key])
            for key in ("state", "name", "job_id")
            if request.query.get(key)
        )
        reply = await state.query("tasks", filters)
        found = sorted(
            reply.rows,
            key=lambda r: r.get("start_time_ms") or r.get("creation_time_ms") or 0,
            reverse=True,
        )
        return web.json_response(
            {
                "tasks": [rows.task_row(r) for r in found[:limit]],
                "total": reply.num_filtered,
            }
        )

    async def task_summary(request: web.Request) -> web.Response:
        return web.json_response(rows.task_summary(await state.rows("tasks")))

    async def timeline(request: web.Request) -> web.Response:
        trace = chrome_trace(await state.rows("tasks"))
        return web.Response(
            body=json.dumps(trace).encode(),
            content_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="ember-timeline.json"'
            },
        )

    async def placement_groups(request: web.Request) -> web.Response:
        reply = await links.control("control.list_placement_groups", Empty())
        assert isinstance(reply, ListPlacementGroupsReply)
        return web.json_response(
            {"placement_groups": [rows.placement_group_row(g) for g in reply.groups]}
        )

    async def grafana(request: web.Request) -> web.Response:
        host = ctx.grafana_host.rstrip("/")
        boards: list[dict[str, str]] = []
        if host:
            from ember.metrics.files.dashboards import SPECS, load_spec

            for name in SPECS:
                spec = load_spec(name)
                boards.append(
                    {"title": spec["title"], "url": f"{host}/d/{spec['uid']}"}
                )
        return web.json_response({"grafana_host": host, "dashboards": boards})

    api_errors.install(app)
    app.router.add_get("/api/cluster", cluster)
    app.router.add_get("/api/nodes", nodes)
    app.router.add_get("/api/nodes/{node_id}", node)
    app.router.add_get("/api/actors", actors)
    app.router.add_get("/api/tasks", tasks)
    app.router.add_get("/api/tasks/summary", task_summary)
    app.router.add_get("/api/timeline", timeline)
    app.router.add_get("/api/placement_groups", placement_groups)
    app.router.add_get("/api/grafana", grafana)
