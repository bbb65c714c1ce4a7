"""The dashboard of ``ember.init()``'s embedded cluster, and its door.

``init()`` starts the dashboard in the background and returns its URL in
the context (``host:port``, as Ray's); ``include_dashboard=False`` starts
none.  Every route of the application (enumerated from ``make_app``, so the
pages and the job API that other modules add are covered as they land)
answers 401 without the token, with a wrong one and with a forged cookie;
a cross-origin mutation is 403 even with the token; ``?token=`` trades the
token for a cookie; the logs API serves nothing outside the logs folder.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import urllib.parse

import psutil
import pytest
from tests.integration.cli_cluster import wait_until

import ember
from ember.common import session
from ember.dashboard.app import make_app
from ember.dashboard.context import DashboardContext
from ember.dashboard.tokens import COOKIE, cookie_value

pytestmark = pytest.mark.multiprocess

EVIL = "http://evil.example"


def request(hostport: str, method: str, path: str, headers=None, body=None):
    """(status, headers, body) of one HTTP request, redirects not followed."""
    host, port = hostport.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def dashboard_children() -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "ember.dashboard" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the dashboard's application."""
    app = make_app(DashboardContext("unix:/nowhere", "t", "/nowhere"))
    out = []
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or re.sub(r"\{[^}]+\}", "x", info.get("formatter", ""))
        if not path:
            continue
        for route in resource:
            method = "GET" if route.method in ("*", "HEAD") else route.method
            out.append((method, path))
    return sorted(set(out))


def test_init_without_the_dashboard_starts_none(caplog):
    caplog.set_level(logging.INFO)
    ctx = ember.init(num_cpus=1, include_dashboard=False)
    try:
        assert ctx.dashboard_url == ""
        assert not dashboard_children()
        assert not any("View the dashboard" in r.getMessage() for r in caplog.records)
    finally:
        ember.shutdown()


def test_bad_dashboard_options_are_refused():
    with pytest.raises(ValueError, match="dashboard_port"):
        ember.init(num_cpus=1, dashboard_port=70000)
    with pytest.raises(TypeError, match="include_dashboard"):
        ember.init(num_cpus=1, include_dashboard="yes")
    assert not ember.is_initialized()


def test_the_machine_default_can_turn_the_dashboard_off(monkeypatch):
    monkeypatch.setenv("EMBER_INCLUDE_DASHBOARD", "0")
    ctx = ember.init(num_cpus=1)
    try:
        assert ctx.dashboard_url == ""
        assert not dashboard_children()
    finally:
        ember.shutdown()


@pytest.fixture(scope="module")
def dash():
    logging.getLogger("ember.api.init").setLevel(logging.INFO)
    ctx = ember.init(num_cpus=1, dashboard_port=0)
    try:
        rec = session.read_cluster_record()
        assert rec is not None
        token = str(rec["token"])
        url = ctx.dashboard_url
        assert re.fullmatch(r"127\.0\.0\.1:\d+", url), url
        auth = {"Authorization": f"Bearer {token}"}
        # init() did not wait for it: it serves a moment later
        assert wait_until(lambda: _up(url, auth), 60)
        yield url, token, str(rec["session_dir"])
    finally:
        ember.shutdown()
    assert wait_until(lambda: not dashboard_children(), 15), dashboard_children()


def _up(url: str, auth: dict[str, str]) -> bool:
    try:
        return request(url, "GET", "/api/version", auth)[0] == 200
    except OSError:
        return False


def test_init_returns_a_working_dashboard_url(dash):
    url, token, _ = dash
    status, _, body = request(
        url, "GET", "/api/cluster", {"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    assert json.loads(body)["nodes_alive"] == 1
    # one process: this driver keeps the socket and supervises it from a thread
    assert len(dashboard_children()) == 1


def test_a_killed_dashboard_is_restarted_by_the_driver(dash):
    url, token, _ = dash
    (old,) = dashboard_children()
    old.kill()
    auth = {"Authorization": f"Bearer {token}"}

    def again() -> bool:
        now = dashboard_children()
        return [p.pid for p in now] not in ([], [old.pid]) and _up(url, auth)

    assert wait_until(again, 60)


def test_the_routes_include_every_api_endpoint():
    paths = {p for _, p in routes()}
    for p in ("/api/cluster", "/api/nodes", "/api/nodes/x", "/api/actors",
              "/api/tasks", "/api/tasks/summary", "/api/timeline",
              "/api/placement_groups", "/api/logs", "/api/logs/file",
              "/api/metrics/history", "/api/grafana", "/api/version", "/login"):  # fmt: skip
        assert p in paths, p


@pytest.mark.parametrize(("method", "path"), routes())
def test_every_route_refuses_requests_without_the_token(dash, method, path):
    url, token, _ = dash
    forged = {"Cookie": f"{COOKIE}={cookie_value('not-the-token')}"}
    raw_cookie = {"Cookie": f"{COOKIE}={token}"}  # the token itself is no cookie
    for headers in ({}, {"Authorization": "Bearer wrong"}, forged, raw_cookie):
        status, _, body = request(url, method, path, headers)
        if path == "/login" and method == "GET":
            assert status == 200  # the form itself
            continue
        assert status == 401, (method, path, headers, status, body[:200])
        assert token.encode() not in body


@pytest.mark.parametrize(
    ("method", "path"), [r for r in routes() if r[0] in ("POST", "PUT", "DELETE")]
)
def test_cross_origin_mutations_are_refused_even_with_the_token(dash, method, path):
    url, token, _ = dash
    headers = {"Authorization": f"Bearer {token}", "Origin": EVIL}
    assert request(url, method, path, headers)[0] == 403


def test_token_in_the_url_becomes_a_cookie(dash):
    url, token, _ = dash
    status, headers, _ = request(url, "GET", f"/?token={urllib.parse.quote(token)}")
    assert status == 302
    assert headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert token not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    value = cookie.split(";", 1)[0]
    status, _, body = request(url, "GET", "/api/cluster", {"Cookie": value})
    assert status == 200
    assert json.loads(body)["nodes_alive"] == 1
    # a cross-origin POST with the cookie is refused too
    status, _, _ = request(
        url, "POST", "/login", {"Cookie": value, "Origin": EVIL}, body=b"token=x"
    )
    assert status == 403


def test_logs_never_serve_a_file_outside_the_logs_folder(dash):
    url, token, session_dir = dash
    auth = {"Authorization": f"Bearer {token}"}
    nodes = json.loads(request(url, "GET", "/api/logs", auth)[2])["nodes"]
    ((node_id, files),) = nodes.items()
    assert "node.log" in files
    secret = os.path.join(session_dir, "pids.json")
    for name in ("../../../../etc/passwd", "/etc/passwd", "../session_latest",
                 "./node.log", "node.log/../../x", secret, "%2e%2e/x"):  # fmt: skip
        q = urllib.parse.urlencode({"node_id": node_id, "filename": name})
        status, _, body = request(url, "GET", f"/api/logs/file?{q}", auth)
        assert status in (400, 404), (name, status)
        assert b"root:" not in body
    q = urllib.parse.urlencode({"node_id": node_id, "filename": "node.log"})
    assert request(url, "GET", f"/api/logs/file?{q}", auth)[0] == 200
