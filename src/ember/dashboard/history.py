"""The last hour of every node's figures, sampled by the dashboard: ``/api/metrics/history``.

Theory of operation.  A sampler task on the dashboard's loop asks every
alive node for ``node.get_system_stats`` every ``interval_s`` (5 s; the
``EMBER_DASHBOARD_HISTORY_INTERVAL_S`` knob) and hands the readings to
:class:`History`, a pure ring buffer of ``span_s / interval_s`` ticks (one
hour: 720).  A node's counters are cumulative; :func:`point` turns two
readings of one node into figures (CPU percent and network rates over the
time between them; the first reading of a node gives its CPU use since
boot and rates of 0).  The charts therefore work without Prometheus.

The cluster-wide series are sums over the nodes of each tick, CPU being the
mean weighted by each node's CPU count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from ember.dashboard.context import DashboardContext
from ember.dashboard.links import ClusterLinks, ClusterUnavailable
from ember.protocol.messages import Empty, SystemStatsReply

logger = logging.getLogger(__name__)

INTERVAL_ENV = "EMBER_DASHBOARD_HISTORY_INTERVAL_S"
DEFAULT_INTERVAL_S = 5.0
SPAN_S = 3600.0
#: the series of /api/metrics/history, in order
SERIES = (
    "cpu_percent",
    "mem_used",
    "mem_total",
    "disk_used",
    "disk_total",
    "net_rx_bps",
    "net_tx_bps",
    "object_store_used",
    "object_store_total",
    "object_store_spilled",
)


@dataclass(frozen=True)
class Point:
    """One node's figures at one tick."""

    cpu_percent: float
    mem_used: int
    mem_total: int
    disk_used: int
    disk_total: int
    net_rx_bps: float
    net_tx_bps: float
    object_store_used: int
    object_store_total: int
    object_store_spilled: int
    cpu_count: int = 0


def _rate(now: float, before: float, seconds: float) -> float:
    return max(now - before, 0.0) / seconds if seconds > 0 else 0.0


def point(prev: SystemStatsReply | None, cur: SystemStatsReply) -> Point:
    """``cur``'s figures; CPU and network over the time since ``prev`` (same node)."""
    if prev is not None and cur.cpu_total_s > prev.cpu_total_s:
        busy = cur.cpu_busy_s - prev.cpu_busy_s
        cpu = 100.0 * max(busy, 0.0) / (cur.cpu_total_s - prev.cpu_total_s)
    else:
        cpu = 100.0 * cur.cpu_busy_s / cur.cpu_total_s if cur.cpu_total_s else 0.0
    dt = cur.time_s - prev.time_s if prev is not None else 0.0
    return Point(
        cpu_percent=round(min(cpu, 100.0), 2),
        mem_used=cur.mem_used,
        mem_total=cur.mem_total,
        disk_used=cur.disk_used,
        disk_total=cur.disk_total,
        net_rx_bps=_rate(cur.net_recv, prev.net_recv, dt) if prev else 0.0,
        net_tx_bps=_rate(cur.net_sent, prev.net_sent, dt) if prev else 0.0,
        object_store_used=cur.store_used,
        object_store_total=cur.store_total,
        object_store_spilled=cur.store_spilled,
        cpu_count=cur.cpu_count,
    )


def process_cpu_percent(
    prev: SystemStatsReply | None, cur: SystemStatsReply
) -> dict[int, float]:
    """Each process's CPU percent (of one CPU) between two readings of its node."""
    if prev is None or cur.time_s <= prev.time_s:
        return {p.pid: 0.0 for p in cur.processes}
    before = {p.pid: p.cpu_s for p in prev.processes}
    dt = cur.time_s - prev.time_s
    return {
        p.pid: round(100.0 * _rate(p.cpu_s, before.get(p.pid, p.cpu_s), dt), 2)
        for p in cur.processes
    }


def cluster_point(points: list[Point]) -> dict[str, float]:
    """The cluster's figures of one tick: sums, and the CPU-count-weighted CPU mean."""
    out: dict[str, float] = dict.fromkeys(SERIES, 0)
    cpus = sum(p.cpu_count for p in points)
    for p in points:
        for name in SERIES:
            if name != "cpu_percent":
                out[name] += getattr(p, name)
    if cpus:
        out["cpu_percent"] = round(
            sum(p.cpu_percent * p.cpu_count for p in points) / cpus, 2
        )
    elif points:
        out["cpu_percent"] = round(sum(p.cpu_percent for p in points) / len(points), 2)
    return out


class History:
    """A ring buffer of ticks, each the points of the nodes sampled then."""

    def __init__(
        self, interval_s: float = DEFAULT_INTERVAL_S, span_s: float = SPAN_S
    ) -> None:
        self.interval_s = interval_s
        self.ticks: deque[tuple[int, dict[str, Point]]] = deque(
            maxlen=max(int(span_s / interval_s), 1)
        )
        #: each node's last two readings (for per-process CPU between them)
        self._readings: dict[str, tuple[SystemStatsReply | None, SystemStatsReply]] = {}

    def add(self, t_ms: int, readings: dict[str, SystemStatsReply]) -> None:
        """One tick: ``readings`` by node id (hex)."""
        points = {}
        for node, cur in readings.items():
            prev = self._readings.get(node, (None, None))[1]
            points[node] = point(prev, cur)
            self._readings[node] = (prev, cur)
        for node in [n for n in self._readings if n not in readings]:
            del self._readings[node]
        self.ticks.append((t_ms, points))

    def latest(self, node: str) -> Point | None:
        """The node's point of the last tick that had it."""
        for _, points in reversed(self.ticks):
            if node in points:
                return points[node]
        return None

    def readings(self, node: str) -> tuple[SystemStatsReply | None, SystemStatsReply]:
        """The node's last two readings (KeyError if it was not in the last tick)."""
        return self._readings[node]

    def query(self, seconds: float, now_ms: int) -> dict[str, Any]:
        """The JSON of ``/api/metrics/history`` over the last ``seconds``."""
        since = now_ms - int(seconds * 1000)
        ticks = [(t, pts) for t, pts in self.ticks if t >= since]
        out: dict[str, Any] = {
            "interval_s": self.interval_s,
            "t": [t for t, _ in ticks],
        }
        for name in SERIES:
            out[name] = []
        for _, pts in ticks:
            row = cluster_point(list(pts.values()))
            for name in SERIES:
                out[name].append(row[name])
        nodes = sorted({n for _, pts in ticks for n in pts})
        per: dict[str, dict[str, list[Any]]] = {}
        for n in nodes:
            series: dict[str, list[Any]] = {name: [] for name in SERIES}
            for _, pts in ticks:
                p = pts.get(n)
                values = asdict(p) if p is not None else {}
                for name in SERIES:
                    series[name].append(values.get(name))
            per[n] = series
        out["nodes"] = per
        return out


async def sample_once(links: ClusterLinks, history: History) -> None:
    """Ask every alive node for its counters and add them as one tick."""
    nodes = [n for n in await links.nodes() if n.alive]

    async def read(n: Any) -> SystemStatsReply | None:
        try:
            reply = await links.node(n, "node.get_system_stats", Empty(), timeout=4)
        except ClusterUnavailable as exc:
            logger.debug("no system stats from node %s: %s", n.node_id.hex(), exc)
            return None
        return reply if isinstance(reply, SystemStatsReply) else None

    got = await asyncio.gather(*(read(n) for n in nodes))
    readings = {n.node_id.hex(): r for n, r in zip(nodes, got, strict=True) if r}
    history.add(int(time.time() * 1000), readings)


async def run_sampler(links: ClusterLinks, history: History) -> None:
    """Sample every ``history.interval_s`` until cancelled."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        try:
            await sample_once(links, history)
        except ClusterUnavailable as exc:
            logger.info("history: the cluster did not answer (%s)", exc)
        next_at = max(next_at + history.interval_s, loop.time())
        await asyncio.sleep(next_at - loop.time())


def interval_from_env() -> float:
    raw = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        raise SystemExit(f"{INTERVAL_ENV}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SystemExit(f"{INTERVAL_ENV} must be positive, not {value}")
    return value


def history_of(ctx: DashboardContext) -> History:
    """The process's :class:`History` (made on first use)."""
    h = ctx.extras.get("history")
    if h is None:
        h = ctx.extras["history"] = History(interval_from_env())
    assert isinstance(h, History)
    return h


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    history = history_of(ctx)

    async def sampler(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run_sampler(ctx.links, history))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def metrics_history(request: web.Request) -> web.Response:
        raw = request.query.get("seconds", str(int(SPAN_S)))
        try:
            seconds = float(raw)
        except ValueError:
            return web.json_response(
                {"error": f"seconds={raw!r} is not a number"}, status=400
            )
        return web.json_response(history.query(seconds, int(time.time() * 1000)))

    app.cleanup_ctx.append(sampler)
    app.router.add_get("/api/metrics/history", metrics_history)
