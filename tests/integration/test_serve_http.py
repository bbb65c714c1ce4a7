"""ember.serve over HTTP and handles: composed deployments, conversions, errors, streams."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("starlette")

from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from tests.integration.serve_cluster import http, http_json, start, stop

from ember import serve
from ember.serve.exceptions import RayServeException

pytestmark = pytest.mark.multiprocess
PORT = 18610
BASE = f"http://127.0.0.1:{PORT}"
NO_CPU = {"num_cpus": 0}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    start(PORT)
    yield
    stop()


@serve.deployment(ray_actor_options=NO_CPU)
class Adder:
    def __init__(self, inc: int) -> None:
        self.inc = inc

    def add(self, x: int) -> int:
        return x + self.inc


@serve.deployment(ray_actor_options=NO_CPU)
class Doubler:
    async def __call__(self, x: int) -> int:
        return 2 * x


@serve.deployment(num_replicas=2, ray_actor_options=NO_CPU)
class Front:
    def __init__(self, adder, doubler) -> None:
        self.adder = adder
        self.doubler = doubler

    async def __call__(self, request: Request):
        x = int(request.query_params["x"])
        # the adder's response goes to the doubler unawaited
        doubled = await self.doubler.remote(self.adder.add.remote(x))
        return {"result": doubled, "replica": serve.get_replica_context().replica_tag}


def test_two_deployments_composed_through_handles_answer_http():
    serve.run(
        Front.bind(Adder.bind(10), Doubler.bind()), name="calc", route_prefix="/calc"
    )
    replicas = set()
    for x in range(20):
        out = http_json(f"{BASE}/calc?x={x}")
        assert out["result"] == 2 * (x + 10)
        replicas.add(out["replica"])
    assert len(replicas) == 2  # both ingress replicas took requests
    routes = http_json(f"{BASE}/-/routes")
    assert routes["/calc"] == "calc"
    serve.delete("calc")
    assert http(f"{BASE}/calc?x=1")[0] == 404


@serve.deployment(ray_actor_options=NO_CPU)
class Kinds:
    def __call__(self, request: Request):
        kind = request.path_params.get("kind") or request.url.path.rsplit("/", 1)[-1]
        if kind == "str":
            return "hello"
        if kind == "bytes":
            return b"\x00raw"
        if kind == "dict":
            return {"a": [1, 2]}
        if kind == "response":
            return PlainTextResponse("teapot", status_code=418)
        if kind == "stream":

            async def gen():
                for i in range(3):
                    yield f"chunk{i};"
                    await asyncio.sleep(0)

            return StreamingResponse(gen(), media_type="text/plain")
        if kind == "echo":
            return {"method": request.method, "query": dict(request.query_params)}
        raise ValueError("boom")


def test_return_values_are_converted_as_ray_does_and_errors_are_500():
    serve.run(Kinds.bind(), name="kinds", route_prefix="/k")
    assert http(f"{BASE}/k/str")[1:] == ("text/plain; charset=utf-8", b"hello")
    assert http(f"{BASE}/k/bytes")[1:] == ("text/plain", b"\x00raw")
    status, ctype, body = http(f"{BASE}/k/dict")
    assert (status, ctype, json.loads(body)) == (200, "application/json", {"a": [1, 2]})
    assert http(f"{BASE}/k/response")[0::2] == (418, b"teapot")
    assert http(f"{BASE}/k/stream")[0::2] == (200, b"chunk0;chunk1;chunk2;")
    assert http_json(f"{BASE}/k/echo?q=1", data=b"x") == {
        "method": "POST",
        "query": {"q": "1"},
    }
    assert http(f"{BASE}/k/fail")[0::2] == (500, b"Internal Server Error")
    assert http(f"{BASE}/nowhere")[0] == 404
    serve.delete("kinds")


@serve.deployment(ray_actor_options=NO_CPU, user_config={"greeting": "hi"})
class Configured:
    def __init__(self) -> None:
        self.greeting = ""

    def reconfigure(self, config: dict) -> None:
        self.greeting = config["greeting"]

    def greet(self, name: str) -> str:
        return f"{self.greeting} {name}"

    def count(self, n: int):
        yield from range(n)

    def fail(self) -> None:
        raise KeyError("missing")


def test_handle_calls_streams_user_config_and_errors():
    h = serve.run(Configured.bind(), name="conf", route_prefix=None)
    assert h.greet.remote("ann").result(timeout_s=30) == "hi ann"
    assert h.options(method_name="greet").remote("bob").result() == "hi bob"
    assert list(h.options(stream=True).count.remote(4)) == [0, 1, 2, 3]
    with pytest.raises(KeyError):
        h.fail.remote().result()
    with pytest.raises(TypeError, match="stream=True"):
        h.count.remote(2).result()

    async def in_async():
        first = await h.greet.remote("cy")
        items = [i async for i in h.options(stream=True).count.remote(2)]
        return first, items

    assert asyncio.run(in_async()) == ("hi cy", [0, 1])
    # a new user_config reconfigures the running replica without replacing it
    serve.run(
        Configured.options(user_config={"greeting": "hey"}).bind(),
        name="conf",
        route_prefix=None,
    )
    assert h.greet.remote("dee").result() == "hey dee"
    assert serve.get_app_handle("conf").greet.remote("eve").result() == "hey eve"
    st = serve.status().applications["conf"]
    assert st.status == "RUNNING"
    assert st.deployments["Configured"].status == "HEALTHY"
    serve.delete("conf")
    with pytest.raises(RayServeException):
        serve.get_app_handle("conf")


@serve.deployment(ray_actor_options=NO_CPU)
def hello(request: Request) -> str:
    return f"hello {request.query_params.get('name', 'world')}"


def test_function_deployment_and_prefix_routing():
    serve.run(hello.bind(), name="root", route_prefix="/")
    serve.run(Kinds.bind(), name="kinds2", route_prefix="/api/kinds")
    assert http(f"{BASE}/?name=x")[2] == b"hello x"
    assert http(f"{BASE}/api/kinds/str")[2] == b"hello"
    assert http(f"{BASE}/api/other")[2] == b"hello world"  # falls back to "/"
    with pytest.raises(RayServeException, match="Prefix"):
        serve.run(hello.bind(), name="clash", route_prefix="/api/kinds")
    serve.delete("kinds2")
    serve.delete("root")


@serve.deployment(ray_actor_options=NO_CPU)
class Broken:
    def __init__(self) -> None:
        raise RuntimeError("cannot load the model")


def test_failing_constructor_fails_the_deploy_with_its_message():
    with pytest.raises(RuntimeError, match="cannot load the model"):
        serve.run(Broken.bind(), name="broken", route_prefix=None)
    assert serve.status().applications["broken"].status == "DEPLOY_FAILED"
    serve.delete("broken")
