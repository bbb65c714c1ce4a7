"""The HTTP endpoint that serves Prometheus text to scrapers holding the cluster token.

It runs on the daemon's own event loop (aiohttp; no thread per scrape) and
answers ``GET /metrics`` (and ``/``) with ``Authorization: Bearer <token>``;
anything else gets 401.  Prometheus sends that header from a scrape config's
``authorization: {type: Bearer, credentials_file: ...}``.  Samples are
computed by the registered collectors when the request arrives, on the loop
thread, so they read the daemon's state without locks.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class MetricsExportError(OSError):
    """The exporter could not listen where it was told (the port is taken, a bad host)."""


class _Guarded(Collector):
    """A collector whose failure costs its own samples, not the whole scrape."""

    def __init__(self, inner: Collector) -> None:
        self._inner = inner
        self._failed_before = False

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._inner.collect())
        except Exception:
            if not self._failed_before:
                logger.exception("metrics collector %r failed", self._inner)
            self._failed_before = True
            return iter(())
        return iter(families)


class MetricsExporter:
    """One daemon's ``/metrics`` endpoint and the collectors behind it."""

    def __init__(self, token: bytes) -> None:
        self._expected = b"Bearer " + token
        self.registry = CollectorRegistry(auto_describe=False)
        self._runner: web.AppRunner | None = None
        #: ``host:port`` once listening
        self.address = ""
        self.port = 0
        self.scrapes = 0
        self.refused = 0

    def add(self, collector: Collector) -> None:
        self.registry.register(_Guarded(collector))

    def authorized(self, header: str) -> bool:
        return hmac.compare_digest(header.encode("latin-1", "replace"), self._expected)

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self.authorized(request.headers.get("Authorization", "")):
            self.refused += 1
            return web.Response(
                status=401,
                text="401: this endpoint needs 'Authorization: Bearer <cluster token>'\n",
                headers={"WWW-Authenticate": 'Bearer realm="ember"'},
            )
        self.scrapes += 1
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: a free port); returns the port."""
        app = web.Application(client_max_size=4096)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise MetricsExportError(
                exc.errno,
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); pick "
                "another --metrics-export-port (0: a free one)",
            ) from exc
        self._runner = runner
        bound: Any = runner.addresses[0]
        self.port = int(bound[1])
        self.address = f"{host}:{self.port}"
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
