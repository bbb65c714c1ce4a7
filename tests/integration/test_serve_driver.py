"""A driver's own Serve instance: ``request_timeout_s`` (408) and ember restarting in one process."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("starlette")

from tests.integration.serve_cluster import http, stop

import ember
from ember import serve

pytestmark = pytest.mark.multiprocess
PORT = 18635


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ember.init(num_cpus=2)
    serve.start(http_options={"port": PORT, "request_timeout_s": 1})
    yield
    stop()


@serve.deployment(ray_actor_options={"num_cpus": 0}, graceful_shutdown_timeout_s=1)
class Hang:
    async def __call__(self, request) -> str:
        if request.query_params.get("hang"):
            await asyncio.Event().wait()
        return "quick"


def test_slow_requests_time_out_with_408():
    serve.run(Hang.bind(), name="hang", route_prefix="/")
    assert http(f"http://127.0.0.1:{PORT}/")[2] == b"quick"
    status, _, body = http(f"http://127.0.0.1:{PORT}/?hang=1", timeout=60)
    assert status == 408
    assert b"timed out" in body
    serve.delete("hang")


@serve.deployment(ray_actor_options={"num_cpus": 0})
def echo(x: int) -> int:
    return x


def test_handles_work_after_ember_restarts_in_the_same_process():
    h = serve.run(echo.bind(), name="echo", route_prefix=None)
    assert h.remote(1).result(timeout_s=30) == 1
    # the driver drops its cluster without serve.shutdown() and starts another one
    ember.shutdown()
    ember.init(num_cpus=2)
    serve.start(http_options={"port": PORT, "request_timeout_s": 1})
    h = serve.run(echo.bind(), name="echo", route_prefix=None)
    assert h.remote(2).result(timeout_s=30) == 2
    serve.delete("echo")
