"""``GET /login`` and ``POST /login``: the form that trades the cluster token for a cookie.

The form is served with 401 on every page a browser opens without the
cookie, and with 200 here.  ``POST /login`` (form field ``token``) checks
the token in constant time; the right one gets the session cookie and a
redirect to ``/`` (303), a wrong one the form again with 401.  The
Origin check of ``auth.py`` runs before, so another site cannot log a
browser in.
"""

from __future__ import annotations

import html

from aiohttp import web

from ember.dashboard.context import DashboardContext
from ember.dashboard.tokens import TokenCheck, set_session_cookie

LOGIN_PATH = "/login"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ember dashboard: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em}}
input[type=password]{{width:100%;padding:.4em;font:inherit}}button{{margin-top:.8em;
padding:.4em 1.2em;font:inherit}}.why{{color:#a33}}</style></head>
<body><h1>ember dashboard</h1>
<p class="why">{why}</p>
<p>Paste the cluster token (the file <code>ember start --head</code> named, or the
<code>?token=</code> part of the URL it printed).</p>
<form method="post" action="/login">
<input type="password" name="token" autocomplete="current-password" autofocus
 aria-label="cluster token">
<button type="submit">Sign in</button></form></body></html>
"""


def login_page(why: str = "") -> str:
    """The sign-in form, with ``why`` (escaped) above it."""
    return _PAGE.format(why=html.escape(why))


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    check = TokenCheck(ctx.token)

    async def form(request: web.Request) -> web.Response:
        return web.Response(text=login_page(), content_type="text/html")

    async def login(request: web.Request) -> web.StreamResponse:
        data = await request.post()
        given = data.get("token", "")
        if not isinstance(given, str) or not check.matches(given.strip()):
            return web.Response(
                status=401,
                text=login_page("that token is not this cluster's"),
                content_type="text/html",
            )
        response = web.HTTPSeeOther("/")
        set_session_cookie(response, ctx.token)
        raise response

    app.router.add_get(LOGIN_PATH, form)
    app.router.add_post(LOGIN_PATH, login)
