"""How the dashboard's JSON API fails: 400 for bad input, 503 for a cluster away."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ember.dashboard.links import ClusterUnavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """A query parameter the API cannot use (400)."""


class NotFound(LookupError):
    """What the request names does not exist (404)."""


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The API's typed failures as ``{"error": ...}`` with their status."""
    try:
        return await handler(request)
    except ClusterUnavailable as exc:
        return web.json_response({"error": str(exc)}, status=503)
    except BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except NotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)


def install(app: web.Application) -> None:
    """Add :func:`json_errors` to ``app`` once."""
    if json_errors not in app.middlewares:
        app.middlewares.append(json_errors)


def bounded_int(name: str, raw: str, maximum: int) -> int:
    """A query parameter ``name`` as an integer in ``0..maximum`` (else BadRequest)."""
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not an integer") from None
    if not 0 <= value <= maximum:
        raise BadRequest(f"{name} must be between 0 and {maximum}, not {value}")
    return value
