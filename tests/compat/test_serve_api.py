"""ember.serve's public API as Ray Serve 2.60 documents it; passes unchanged on Ray.

One Serve instance per module (its own HTTP port); each test runs its own application
and deletes it. Replicas ask for no CPU so the small test cluster fits them all.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

pytest.importorskip("starlette")

from tests.compat.conftest import wait_for_condition

import ember as ray
from ember import serve
from ember.serve.exceptions import BackPressureError, RayServeException

PORT = 18650
URL = f"http://127.0.0.1:{PORT}"
NO_CPU = {"num_cpus": 0}


@pytest.fixture(scope="module", autouse=True)
def serve_instance():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=4)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    yield
    serve.shutdown()
    ray.shutdown()


def get(path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"{URL}{path}", timeout=30) as r:
        return r.status, r.headers.get("content-type"), r.read()


@serve.deployment(ray_actor_options=NO_CPU)
class Preprocess:
    def __call__(self, text: str) -> str:
        return text.strip().lower()


@serve.deployment(ray_actor_options=NO_CPU)
class Model:
    def __init__(self, weight: int) -> None:
        self.weight = weight

    async def __call__(self, text: str) -> dict:
        return {"text": text, "score": len(text) * self.weight}


@serve.deployment(ray_actor_options=NO_CPU)
class Pipeline:
    def __init__(self, pre, model) -> None:
        self.pre = pre
        self.model = model

    async def __call__(self, request) -> dict:
        text = (await request.body()).decode()
        return await self.model.remote(self.pre.remote(text))

    async def direct(self, text: str) -> dict:
        return await self.model.remote(await self.pre.remote(text))


def test_model_composition_over_http_and_handles():
    handle = serve.run(
        Pipeline.bind(Preprocess.bind(), Model.bind(2)),
        name="pipeline",
        route_prefix="/p",
    )
    assert isinstance(handle, serve.handle.DeploymentHandle)
    response = handle.direct.remote("  HeLLo ")
    assert isinstance(response, serve.handle.DeploymentResponse)
    assert response.result(timeout_s=30) == {"text": "hello", "score": 10}
    req = urllib.request.Request(f"{URL}/p", data=b" ABC ")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert json.loads(r.read()) == {"text": "abc", "score": 6}
    st = serve.status()
    app = st.applications["pipeline"]
    assert app.status == "RUNNING"
    assert set(app.deployments) == {"Pipeline", "Preprocess", "Model"}
    assert all(d.status == "HEALTHY" for d in app.deployments.values())
    assert serve.get_app_handle("pipeline").direct.remote("X").result() == {
        "text": "x",
        "score": 2,
    }
    model = serve.get_deployment_handle("Model", app_name="pipeline")
    assert model.remote("abcd").result()["score"] == 8
    serve.delete("pipeline")
    assert "pipeline" not in serve.status().applications
    with pytest.raises(RayServeException):
        serve.get_app_handle("pipeline")


@serve.deployment(ray_actor_options=NO_CPU)
def text_handler(request) -> str:
    return "plain text"


def test_function_deployment_and_response_types():
    serve.run(text_handler.bind(), name="text", route_prefix="/text")
    status, ctype, body = get("/text")
    assert (status, body) == (200, b"plain text")
    assert ctype.startswith("text/plain")
    serve.delete("text")


@serve.deployment(ray_actor_options=NO_CPU, user_config={"threshold": 1})
class Threshold:
    def __init__(self) -> None:
        self.threshold = None

    def reconfigure(self, config: dict) -> None:
        self.threshold = config["threshold"]

    def get(self) -> int:
        return self.threshold

    def fail(self) -> None:
        raise ValueError("bad input")

    def numbers(self, n: int):
        yield from range(n)

    def replica(self) -> tuple:
        ctx = serve.get_replica_context()
        return ctx.app_name, ctx.deployment


def test_user_config_streaming_errors_and_replica_context():
    h = serve.run(Threshold.bind(), name="thr", route_prefix=None)
    assert h.get.remote().result() == 1
    assert h.replica.remote().result() == ("thr", "Threshold")
    assert list(h.options(stream=True).numbers.remote(3)) == [0, 1, 2]
    with pytest.raises(ValueError):
        h.fail.remote().result()
    serve.run(
        Threshold.options(user_config={"threshold": 5}).bind(),
        name="thr",
        route_prefix=None,
    )
    wait_for_condition(lambda: h.get.remote().result() == 5)
    serve.delete("thr")


@serve.deployment(ray_actor_options=NO_CPU, max_ongoing_requests=32)
class BatchModel:
    def __init__(self) -> None:
        self.batches: list[int] = []

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=1.0)
    async def handle_batch(self, inputs: list[int]) -> list[int]:
        self.batches.append(len(inputs))
        return [i * 10 for i in inputs]

    async def __call__(self, x: int) -> int:
        return await self.handle_batch(x)

    def seen(self) -> list[int]:
        return self.batches


def test_serve_batch_groups_concurrent_calls():
    h = serve.run(BatchModel.bind(), name="batch", route_prefix=None)
    results = [h.remote(i) for i in range(8)]
    assert [r.result(timeout_s=30) for r in results] == [i * 10 for i in range(8)]
    seen = h.seen.remote().result()
    assert sum(seen) == 8
    assert max(seen) == 4
    serve.delete("batch")


@ray.remote(num_cpus=0)
class Gate:
    def __init__(self) -> None:
        self.started = 0
        self.event = asyncio.Event()

    async def enter(self) -> None:
        self.started += 1
        await self.event.wait()

    def num_started(self) -> int:
        return self.started

    def open(self) -> None:
        self.event.set()


@serve.deployment(
    ray_actor_options=NO_CPU, max_ongoing_requests=1, max_queued_requests=1
)
class Slow:
    def __init__(self, gate) -> None:
        self.gate = gate

    async def __call__(self) -> str:
        await self.gate.enter.remote()
        return "ok"


def test_max_queued_requests_raises_backpressure():
    gate = Gate.remote()
    h = serve.run(Slow.bind(gate), name="slow", route_prefix=None)
    first = h.remote()
    wait_for_condition(lambda: ray.get(gate.num_started.remote()) == 1)
    second = h.remote()
    with pytest.raises(BackPressureError):
        h.remote().result(timeout_s=30)
    ray.get(gate.open.remote())
    assert first.result(timeout_s=30) == "ok"
    assert second.result(timeout_s=30) == "ok"
    serve.delete("slow")


def test_options_and_bind_errors():
    d = Model.options(name="Other", num_replicas=2, max_ongoing_requests=7)
    assert (d.name, d.num_replicas, d.max_ongoing_requests) == ("Other", 2, 7)
    assert Model.max_ongoing_requests == 5  # Ray's default
    with pytest.raises(Exception):
        Model.options(max_ongoing_requests=0)
