"""ember.serve under concurrent load: batching, back-pressure, multiplexing, FastAPI."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

pytest.importorskip("starlette")

from starlette.requests import Request
from tests.integration.serve_cluster import http, http_json, start, stop, wait_for

import ember
from ember import serve
from ember.serve.exceptions import BackPressureError

# heavy (autoscaling, kills, restarts, a CLI cluster): in the slow run
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
PORT = 18620
BASE = f"http://127.0.0.1:{PORT}"
NO_CPU = {"num_cpus": 0}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    start(PORT)
    yield
    stop()


@serve.deployment(ray_actor_options=NO_CPU, max_ongoing_requests=100)
class Batcher:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.5)
    async def square(self, xs: list[int]) -> list[int]:
        self.sizes.append(len(xs))
        return [x * x for x in xs]

    async def __call__(self, request: Request) -> int:
        return await self.square(int(request.query_params["x"]))

    def batch_sizes(self) -> list[int]:
        return self.sizes


def test_batch_groups_concurrent_requests():
    h = serve.run(Batcher.bind(), name="batch", route_prefix="/sq")
    responses = [h.square.remote(x) for x in range(16)]
    assert [r.result(timeout_s=60) for r in responses] == [x * x for x in range(16)]
    sizes = h.batch_sizes.remote().result()
    assert sum(sizes) == 16
    assert max(sizes) == 8  # concurrent calls were grouped into full batches
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda x: http(f"{BASE}/sq?x={x}")[2], range(8)))
    assert outs == [str(x * x).encode() for x in range(8)]
    after = h.batch_sizes.remote().result()
    assert sum(after) == 24
    assert len(after) < len(sizes) + 8  # the HTTP requests were batched too
    serve.delete("batch")


@ember.remote(num_cpus=0)
class Signal:
    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.waiting = 0

    async def wait(self) -> None:
        self.waiting += 1
        await self.event.wait()
        self.waiting -= 1

    async def send(self) -> None:
        self.event.set()

    async def reset(self) -> None:
        self.event = asyncio.Event()

    async def num_waiting(self) -> int:
        return self.waiting


@serve.deployment(
    ray_actor_options=NO_CPU,
    max_ongoing_requests=1,
    max_queued_requests=2,
    graceful_shutdown_timeout_s=1,
)
class Gate:
    def __init__(self, signal) -> None:
        self.signal = signal

    async def wait(self) -> str:
        await self.signal.wait.remote()
        return "done"

    async def __call__(self, request: Request) -> str:
        return await self.wait()


def test_requests_beyond_the_queue_are_refused_with_backpressure():
    signal = Signal.remote()
    h = serve.run(Gate.bind(signal), name="gate", route_prefix="/gate")
    # one runs, two wait in the handle's queue, the fourth is refused
    held = [h.wait.remote() for _ in range(3)]
    with pytest.raises(BackPressureError):
        h.wait.remote().result(timeout_s=30)
    ember.get(signal.send.remote())
    assert [r.result(timeout_s=30) for r in held] == ["done"] * 3
    ember.get(signal.reset.remote())
    # over HTTP the proxy's queue answers 503 once it is full
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        inflight = [pool.submit(http, f"{BASE}/gate", timeout=60) for _ in range(3)]
        wait_for(
            lambda: ember.get(signal.num_waiting.remote()) == 1, what="one running"
        )
        wait_for(lambda: http(f"{BASE}/gate", timeout=2)[0] == 503, what="a 503")
        ember.get(signal.send.remote())
        assert [f.result()[2] for f in inflight] == [b"done"] * 3
    serve.delete("gate")


@serve.deployment(ray_actor_options=NO_CPU)
class Models:
    def __init__(self) -> None:
        self.loads: list[str] = []

    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str) -> str:
        self.loads.append(model_id)
        return f"model-{model_id}"

    async def __call__(self, request: Request) -> dict:
        model = await self.get_model(serve.get_multiplexed_model_id())
        return {"model": model, "loads": list(self.loads)}

    async def predict(self) -> str:
        return await self.get_model(serve.get_multiplexed_model_id())


def test_multiplexed_models_are_cached_per_replica():
    h = serve.run(Models.bind(), name="mux", route_prefix="/mux")
    hdr = {"serve_multiplexed_model_id": "a"}
    assert http_json(f"{BASE}/mux", headers=hdr) == {"model": "model-a", "loads": ["a"]}
    assert http_json(f"{BASE}/mux", headers=hdr)["loads"] == ["a"]  # cached
    assert h.options(multiplexed_model_id="b").predict.remote().result() == "model-b"
    assert h.options(multiplexed_model_id="c").predict.remote().result() == "model-c"
    # capacity 2: "a" was evicted, so it loads again
    assert http_json(f"{BASE}/mux", headers=hdr)["loads"] == ["a", "b", "c", "a"]
    serve.delete("mux")


@serve.deployment(ray_actor_options=NO_CPU, num_replicas=2)
class Pool:
    @serve.multiplexed(max_num_models_per_replica=4)
    async def get_model(self, model_id: str) -> str:
        return model_id

    async def which(self) -> str:
        await self.get_model(serve.get_multiplexed_model_id())
        return serve.get_replica_context().replica_tag


def test_requests_for_a_model_go_to_the_replica_holding_it():
    h = serve.run(Pool.bind(), name="pool", route_prefix=None)
    ha = h.options(multiplexed_model_id="a")
    first = ha.which.remote().result()

    def settled() -> bool:
        return {ha.which.remote().result() for _ in range(10)} == {first}

    wait_for(settled, what="model 'a' requests on the replica that loaded it")
    serve.delete("pool")


def test_fastapi_ingress():
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI()

    @serve.deployment(ray_actor_options=NO_CPU)
    @serve.ingress(app)
    class Api:
        def __init__(self, prefix: str) -> None:
            self.prefix = prefix

        @app.get("/")
        def root(self) -> str:
            return f"{self.prefix}: root"

        @app.get("/items/{item_id}")
        async def item(self, item_id: int, q: str | None = None) -> dict:
            return {"item_id": item_id, "q": q, "prefix": self.prefix}

        @app.post("/echo")
        async def echo(self, body: dict) -> dict:
            return {"got": body}

    serve.run(Api.bind("svc"), name="fast", route_prefix="/fast")
    assert http_json(f"{BASE}/fast/") == "svc: root"
    assert http_json(f"{BASE}/fast/items/7?q=x") == {
        "item_id": 7,
        "q": "x",
        "prefix": "svc",
    }
    out = http_json(
        f"{BASE}/fast/echo",
        data=b'{"a": 1}',
        headers={"content-type": "application/json"},
    )
    assert out == {"got": {"a": 1}}
    assert http(f"{BASE}/fast/items/notanint")[0] == 422
    serve.delete("fast")
