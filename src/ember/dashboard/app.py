"""The dashboard's aiohttp application, assembled from its route modules."""

from __future__ import annotations

import importlib

from aiohttp import web

from ember.dashboard.auth import token_middleware
from ember.dashboard.context import DashboardContext

#: modules with ``add_routes(app: web.Application, ctx: DashboardContext) -> None``
ROUTE_MODULES: tuple[str, ...] = (
    "ember.dashboard.version",
    "ember.dashboard.login",
    "ember.dashboard.history",
    "ember.dashboard.state_api",
    "ember.dashboard.logs_api",
    "ember.dashboard.pages",
    "ember.dashboard.jobs.routes",
)


def make_app(ctx: DashboardContext) -> web.Application:
    """The application serving ``ctx``'s cluster: every route behind the token."""
    app = web.Application(middlewares=[token_middleware(ctx.token)])
    for name in ROUTE_MODULES:
        importlib.import_module(name).add_routes(app, ctx)
    return app
