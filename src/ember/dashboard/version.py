"""``GET /api/version``: which server this is (Ray's job client asks it first)."""

from __future__ import annotations

from aiohttp import web

from ember._version import __version__
from ember.dashboard.context import DashboardContext

#: the Jobs REST protocol version Ray 2.60's server reports
JOBS_API_VERSION = "4"
RAY_VERSION = "2.60.0"


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    async def version(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": JOBS_API_VERSION,
                "ray_version": RAY_VERSION,
                "ray_commit": "",
                "ember_version": __version__,
                "session_name": ctx.session_dir.rstrip("/").rsplit("/", 1)[-1],
            }
        )

    app.router.add_get("/api/version", version)
