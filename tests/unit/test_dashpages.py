"""The dashboard's pages as files: what ``GET /`` and ``GET /static/{name}`` answer.

Served on 127.0.0.1 by the test's own loop (only the pages' routes, as
``make_app`` adds them) and read with an HTTP client as a browser reads
them; and the static files themselves checked for what the pages promise
(no HTML built from data, nothing inline the CSP would block, small).
"""

from __future__ import annotations

import asyncio
import fnmatch
import gzip
import re
import tomllib
from importlib import resources
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from ember.dashboard import app as dashboard_app, pages
from ember.dashboard.context import DashboardContext

STATIC = resources.files("ember.dashboard").joinpath("static")
ROOT = Path(__file__).resolve().parents[2]


def static_names() -> list[str]:
    return sorted(e.name for e in STATIC.iterdir() if e.is_file())


def serve_and_get(
    requests: list[tuple[str, dict[str, str]]],
) -> list[tuple[int, CIMultiDict[str], bytes]]:
    """GET each ``(path, headers)`` from the pages' routes on 127.0.0.1."""

    async def main() -> list[tuple[int, CIMultiDict[str], bytes]]:
        app = web.Application()
        pages.add_routes(app, DashboardContext("127.0.0.1:1", "t" * 32, "/nonexistent"))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for path, headers in requests:
                    url = f"http://127.0.0.1:{port}{path}"
                    async with s.get(url, headers=headers, allow_redirects=False) as r:
                        out.append((r.status, r.headers.copy(), await r.read()))
        finally:
            await runner.cleanup()
        return out

    return asyncio.run(main())


def get(path: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    return serve_and_get([(path, headers)])[0]


def test_the_pages_module_is_one_of_the_apps_route_modules():
    assert "ember.dashboard.pages" in dashboard_app.ROUTE_MODULES


def test_the_index_names_every_script_and_stylesheet_with_the_files_digest():
    status, headers, body = get("/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "private, no-cache"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    html = body.decode()
    assert pages.VERSION_MARK not in html
    version = pages.StaticFiles.from_package().version
    refs = re.findall(r'(?:src|href)="/static/([^"?]+)\?v=([0-9a-f]+)"', html)
    assert {name for name, _ in refs} == set(static_names()) - {"index.html"}
    assert {v for _, v in refs} == {version}


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("chart.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ],
)
def test_a_file_of_the_current_digest_is_cached_for_good_others_revalidate(name, ctype):
    version = pages.StaticFiles.from_package().version
    current, other, stale = serve_and_get(
        [
            (f"/static/{name}?v={version}", {}),
            (f"/static/{name}", {}),
            (f"/static/{name}?v=0123456789abcdef", {}),
        ]
    )
    assert current[0] == 200
    assert current[1]["Content-Type"] == ctype
    assert current[1]["Cache-Control"] == "private, max-age=31536000, immutable"
    assert current[2] == STATIC.joinpath(name).read_bytes()
    for status, headers, body in (other, stale):
        assert status == 200
        assert headers["Cache-Control"] == "private, no-cache"
        assert body == current[2]


def test_a_matching_etag_is_answered_304_without_a_body():
    _status, headers, _ = get("/static/dom.js")
    etag = headers["ETag"]
    again, headers2, body = get("/static/dom.js", **{"If-None-Match": etag})
    assert (again, body) == (304, b"")
    assert headers2["ETag"] == etag
    changed, _, body = get("/static/dom.js", **{"If-None-Match": '"something-else"'})
    assert changed == 200
    assert body
    index_etag = get("/")[1]["ETag"]
    assert get("/", **{"If-None-Match": index_etag})[0] == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/pages.py",
        "/static/__init__.py",
        "/static/../pages.py",
        "/static/..%2Fpages.py",
        "/static/%2e%2e%2fpages.py",
        "/static/%2E%2E/app.py",
        "/static/..%5Cpages.py",
        "/static/.hidden",
        "/static/index.html",
        "/static/",
        "/static/app.js%00.png",
        "/static/APP.JS",
    ],
)
def test_only_the_static_folders_files_are_served(path):
    status, _, body = get(path)
    assert status == 404, (path, status)
    assert b"add_routes" not in body
    assert b"import" not in body


def test_the_static_folder_is_package_data_of_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["ember"]
    for name in static_names():
        rel = f"dashboard/static/{name}"
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


def test_the_static_files_are_small():
    total = sum(len(STATIC.joinpath(n).read_bytes()) for n in static_names())
    assert total < 60 * 1024, total


def test_no_script_builds_html_from_text_and_nothing_is_inline():
    for name in static_names():
        text = STATIC.joinpath(name).read_text()
        if name.endswith(".js"):
            for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                        "eval(", "new Function", "setAttribute(\"style\""):  # fmt: skip
                assert bad not in text, (name, bad)
            assert 'style: "' not in text, name  # a style attribute: blocked by the CSP
    html = STATIC.joinpath("index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers


def test_every_link_of_the_nav_has_a_route():
    app_js = STATIC.joinpath("app.js").read_text()
    routes = [re.compile(r) for r in re.findall(r'\[/(\^[^,]*\$)/, "', app_js)]
    views = set(re.findall(r'\[/\^[^,]*\$/, "(\w+)"\]', app_js))
    assert routes
    assert views
    html = STATIC.joinpath("index.html").read_text()
    hrefs = re.findall(r'href="#(/[^"]*)"', html)
    assert len(hrefs) >= 9
    for href in hrefs:
        assert any(r.match(href.replace("\\/", "/")) for r in routes), href
    defined = set()
    for name in static_names():
        if name.startswith("views_"):
            defined |= set(
                re.findall(r"E\.views\.(\w+) = ", STATIC.joinpath(name).read_text())
            )
    assert views == defined


def test_static_files_need_an_index():
    with pytest.raises(ValueError, match=r"index\.html"):
        pages.StaticFiles({"app.js": b""})
    a = pages.StaticFiles(
        {"index.html": b"<p>%EMBER_STATIC_VERSION%</p>", "a.js": b"1"}
    )
    b = pages.StaticFiles(
        {"index.html": b"<p>%EMBER_STATIC_VERSION%</p>", "a.js": b"2"}
    )
    assert a.version != b.version
    assert a.files["index.html"].body == f"<p>{a.version}</p>".encode()
    assert a.files["a.js"].content_type == "text/javascript; charset=utf-8"


@pytest.mark.parametrize(
    ("accept", "packed"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("identity", False),
        ("gzip;q=0", False),
        ("", False),
    ],
)
def test_a_browser_that_accepts_gzip_gets_the_file_gzipped(accept, packed):
    files = pages.StaticFiles.from_package()
    raw = STATIC.joinpath("views_cluster.js").read_bytes()
    r = files.response("views_cluster.js", accept_encoding=accept)
    assert r.headers["Vary"] == "Accept-Encoding"
    assert isinstance(r.body, bytes)
    if packed:
        assert r.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(r.body) == raw
        assert len(r.body) < len(raw) / 2
        assert r.headers["ETag"].endswith('-gz"')
    else:
        assert "Content-Encoding" not in r.headers
        assert r.body == raw
