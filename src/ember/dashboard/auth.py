"""The dashboard's door: every request carries the cluster token or gets 401."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer`` header ("" if none)."""
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else ""


def token_middleware(token: str) -> Middleware:
    """An aiohttp middleware that answers 401 to a request without ``token``."""
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not hmac.compare_digest(bearer(request).encode(), expected):
            raise web.HTTPUnauthorized(text="the cluster token is required\n")
        return await handler(request)

    return check
