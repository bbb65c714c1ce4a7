"""The dashboard's door over real HTTP (an in-process aiohttp server): token, cookie, Origin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from ember.dashboard import login
from ember.dashboard.auth import token_middleware
from ember.dashboard.context import DashboardContext
from ember.dashboard.tokens import COOKIE, cookie_value

TOKEN = "s3cret-token"


def app() -> web.Application:
    a = web.Application(middlewares=[token_middleware(TOKEN)])
    ctx = DashboardContext(
        control_address="unix:/nowhere", token=TOKEN, session_dir="/x"
    )
    login.add_routes(a, ctx)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "path": request.path_qs})

    a.router.add_get("/", ok)
    a.router.add_get("/nodes", ok)
    a.router.add_get("/api/thing", ok)
    a.router.add_post("/api/thing", ok)
    return a


def run(fn: Callable[[TestServer, aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = TestServer(app())
        await server.start_server()
        jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1
        try:
            async with aiohttp.ClientSession(cookie_jar=jar) as s:
                return await fn(server, s)
        finally:
            await server.close()

    return asyncio.run(main())


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


def test_no_token_is_401_with_the_login_form_for_pages_and_text_for_the_api():
    async def go(server, s):
        async with s.get(url(server, "/nodes")) as r:
            assert r.status == 401
            assert r.content_type == "text/html"
            assert 'name="token"' in await r.text()
        async with s.get(url(server, "/api/thing")) as r:
            assert r.status == 401
            assert r.content_type == "text/plain"
            assert "token" in await r.text()
        async with s.get(url(server, "/api/not-a-route")) as r:
            assert r.status == 401  # not 404: nothing is told without the token

    run(go)


def test_bearer_token_lets_in_and_a_wrong_one_does_not():
    async def go(server, s):
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with s.get(url(server, "/api/thing"), headers=good) as r:
            assert r.status == 200
        bad = {"Authorization": f"Bearer {TOKEN}x"}
        async with s.get(url(server, "/api/thing"), headers=bad) as r:
            assert r.status == 401
        async with s.get(
            url(server, "/api/thing"), headers={"Authorization": TOKEN}
        ) as r:
            assert r.status == 401  # not a Bearer header

    run(go)


def test_token_in_the_url_sets_an_hmac_cookie_and_redirects_without_it():
    async def go(server, s):
        async with s.get(
            url(server, f"/nodes?token={TOKEN}&tab=2"), allow_redirects=False
        ) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/nodes?tab=2"
            raw = r.headers["Set-Cookie"]
            assert TOKEN not in raw
            assert cookie_value(TOKEN) in raw
            assert "HttpOnly" in raw
            assert "SameSite=Strict" in raw
        async with s.get(url(server, "/api/thing")) as r:  # the cookie now
            assert r.status == 200
        async with s.get(url(server, "/?token=wrong"), allow_redirects=False) as r:
            assert r.status == 401

    run(go)


def test_forged_cookie_is_refused():
    async def go(server, s):
        for value in (TOKEN, cookie_value("another-token"), "0" * 64):
            headers = {"Cookie": f"{COOKIE}={value}"}
            async with s.get(url(server, "/api/thing"), headers=headers) as r:
                assert r.status == 401, value

    run(go)


def test_login_form_post_sets_the_cookie_and_a_wrong_token_gets_401():
    async def go(server, s):
        async with s.get(url(server, "/login")) as r:
            assert r.status == 200
            assert 'name="token"' in await r.text()
        async with s.post(
            url(server, "/login"), data={"token": "nope"}, allow_redirects=False
        ) as r:
            assert r.status == 401
        async with s.post(
            url(server, "/login"), data={"token": TOKEN}, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/"
        async with s.get(url(server, "/api/thing")) as r:
            assert r.status == 200

    run(go)


def test_cross_origin_mutations_are_refused_even_with_the_token():
    async def go(server, s):
        good = {"Authorization": f"Bearer {TOKEN}"}
        evil = {**good, "Origin": "http://evil.example"}
        async with s.post(url(server, "/api/thing"), headers=evil) as r:
            assert r.status == 403
        async with s.post(
            url(server, "/login"),
            data={"token": TOKEN},
            headers={"Origin": "http://evil.example"},
            allow_redirects=False,
        ) as r:
            assert r.status == 403
        own = {**good, "Origin": f"http://{server.host}:{server.port}"}
        async with s.post(url(server, "/api/thing"), headers=own) as r:
            assert r.status == 200
        async with s.post(url(server, "/api/thing"), headers=good) as r:
            assert r.status == 200  # no Origin: not a browser's cross-site request

    run(go)
