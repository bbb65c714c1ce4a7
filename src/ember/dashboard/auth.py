"""The dashboard's door: every request carries the cluster token or gets 401.

Theory of operation.  A request is let in when it carries the token:

- ``Authorization: Bearer <token>`` (the CLI, ``JobSubmissionClient``, curl), or
- the session cookie (:data:`COOKIE`), whose value is ``HMAC-SHA256(token,
  "ember-dashboard")`` in hex: the browser never holds the token itself, and
  the cookie is worth nothing against another cluster.  It is set
  (``HttpOnly; SameSite=Strict; Path=/``) by a ``GET`` of any page with
  ``?token=<token>`` (the URL ``ember start --head`` prints, as Jupyter's),
  which then redirects to the same path without the token, or by ``POST
  /login`` with the form field ``token``.

Everything else gets 401: a page (any path outside ``/api/`` and ``/static/``)
gets the login form with it, the rest a line of text.  Tokens and cookies are
compared in constant time (``hmac.compare_digest``).

A mutating request (POST, PUT, PATCH, DELETE) whose ``Origin`` header is
present and is not the dashboard's own origin (``http://<Host header>``) gets
403 before anything else, the token included: a page on another site cannot
make the browser submit a job or log in with its cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Middleware

from ember.dashboard.login import LOGIN_PATH, login_page
from ember.dashboard.tokens import TokenCheck, bearer as bearer, set_session_cookie

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: paths answered with text (not the login form) when the token is missing
NON_PAGE_PREFIXES = ("/api/", "/static/")


def same_origin(request: web.Request) -> bool:
    """Whether a request's ``Origin`` (if any) is the dashboard's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.rstrip("/") == f"{request.scheme}://{request.host}"


def is_page(path: str) -> bool:
    return path != "/api" and not path.startswith(NON_PAGE_PREFIXES)


def _without_token(request: web.Request) -> str:
    rest = [(k, v) for k, v in request.query.items() if k != "token"]
    return request.path + ("?" + urlencode(rest) if rest else "")


def _unauthorized(request: web.Request, why: str) -> web.Response:
    if is_page(request.path) and request.method in ("GET", "HEAD"):
        return web.Response(
            status=401, text=login_page(why), content_type="text/html", charset="utf-8"
        )
    return web.Response(status=401, text=f"{why}\n")


def token_middleware(token: str) -> Middleware:
    """An aiohttp middleware: the Origin check, then the token check (see the module)."""
    check = TokenCheck(token)

    @web.middleware
    async def door(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in MUTATING and not same_origin(request):
            return web.Response(status=403, text="cross-origin requests are refused\n")
        if request.path == LOGIN_PATH:
            return await handler(request)  # the form, and POST's own token check
        if "token" in request.query and request.method in ("GET", "HEAD"):
            if not check.matches(request.query["token"]):
                return _unauthorized(request, "that token is not this cluster's")
            response = web.HTTPFound(_without_token(request))
            set_session_cookie(response, token)
            raise response
        if not check.allowed(request):
            return _unauthorized(request, "the cluster token is required")
        return await handler(request)

    return door
