"""A head started with ``ember start --head`` and the job server served in this process.

The dashboard process is not what these tests are about: the fixture serves
``make_app(ctx)`` (the token door plus the job routes) on ``127.0.0.1`` (a
port in 18500-18599) from a thread of the test process, against a real
cluster under a private root (``cli_cluster``). Job entrypoints are then
children of the test process, so the suite's leak check sees any left over.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Any

import psutil
import pytest
from aiohttp import web
from tests.integration.cli_cluster import (
    CLI,
    clean_up,
    env_for,
    make_root,
    processes_under,
    wait_until,
)

from ember.dashboard.app import make_app
from ember.dashboard.context import DashboardContext

PORTS = range(18500, 18600)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18500-18599")


class JobServer:
    """``make_app(ctx)`` served from a thread with its own event loop."""

    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> JobServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(30)
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(make_app(self.ctx))
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        """Run ``coro`` on the server's loop (e.g. the manager's methods)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def manager(self) -> Any:
        return self.ctx.extras["jobs"]

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    # -- HTTP ----------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "",
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """``(status, JSON or text)`` of one request (token "" = the cluster's)."""
        headers = dict(headers or {})
        tok = self.ctx.token if token == "" else token
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def job(self, sid: str) -> dict[str, Any]:
        status, info = self.call("GET", f"/api/jobs/{sid}")
        assert status == 200, info
        return info

    def wait_status(self, sid: str, want: set[str], timeout_s: float = 120) -> dict:
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.job(sid))
            return seen["status"] in want

        assert wait_until(reached, timeout_s, 0.1), seen
        return seen


class Head:
    """``ember start --head`` under a private root; its record's address and token."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.env = env_for(root)

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=kw.pop("env", self.env), capture_output=True,
            text=True, timeout=kw.pop("timeout", 180), **kw,
        )  # fmt: skip

    def start(self) -> None:
        # the head's own dashboard (when `ember start` has one) is left out: the
        # job server under test is this process's
        helps = self.cli("start", "--help").stdout
        no_dashboard = (
            ["--include-dashboard=false"]
            if "--include-dashboard" in helps
            else ["--dashboard-port", "0"]
        )
        out = self.cli(
            "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
            "--num-cpus", "2", "--object-store-memory", str(200 * 1024 * 1024),
            *no_dashboard,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        [path] = glob.glob(os.path.join(self.root, "ember-*", "current_cluster.json"))
        with open(path) as f:
            self.record = json.load(f)

    def context(self) -> DashboardContext:
        return DashboardContext(
            control_address=self.record["control_address"],
            token=self.record["token"],
            session_dir=self.record["session_dir"],
        )

    def control_child(self) -> psutil.Process | None:
        for p in processes_under(self.root):
            try:
                cmd = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if "ember.control" in cmd and "--supervise" not in cmd:
                return p
        return None


@pytest.fixture
def head():
    root = make_root("emjb")
    h = Head(root)
    try:
        h.start()
        yield h
    finally:
        left = clean_up(root)
    assert not left, left


@pytest.fixture
def server(head):
    s = JobServer(head.context()).start()
    try:
        yield s
    finally:
        s.stop()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
