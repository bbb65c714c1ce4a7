"""``http_options.request_timeout_s``: a request that takes longer gets 408."""

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
