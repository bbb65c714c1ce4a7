# Model composition as Ray Serve's documentation writes it ("Deploy Compositions
# of Models"): deployments call each other through DeploymentHandles.
from __future__ import annotations

import requests
from starlette.requests import Request

import ember as ray
from ember import serve
from ember.serve.handle import DeploymentHandle

ray.init(num_cpus=2)
serve.start(http_options={"host": "127.0.0.1", "port": 18661})


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Adder:
    def __init__(self, increment: int):
        self._increment = increment

    def __call__(self, val: int) -> int:
        return val + self._increment


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Combiner:
    def __call__(self, a: int, b: int) -> int:
        return a + b


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Ingress:
    def __init__(self, adder1: DeploymentHandle, adder2: DeploymentHandle, combiner):
        self._adder1 = adder1
        self._adder2 = adder2
        self._combiner = combiner

    async def __call__(self, request: Request) -> dict:
        val = int(request.query_params["val"])
        # responses are passed on without awaiting them first
        r1 = self._adder1.remote(val)
        r2 = self._adder2.remote(val)
        total = await self._combiner.remote(r1, r2)
        return {"result": total}


app = Ingress.bind(Adder.bind(increment=1), Adder.bind(increment=2), Combiner.bind())
handle = serve.run(app)

resp = requests.get("http://127.0.0.1:18661/", params={"val": 10})
assert resp.json() == {"result": 23}, resp.text
print(resp.json())

status = serve.status()
assert status.applications["default"].status == "RUNNING"
assert set(status.applications["default"].deployments) == {
    "Ingress",
    "Adder",
    "Adder_1",
    "Combiner",
}

serve.shutdown()
ray.shutdown()
print("OK")
