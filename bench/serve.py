"""Serve over HTTP: requests/s and p50/p99 latency, ember vs Ray 2.60 vs a bare ASGI app.

Each backend runs in a fresh process of its own::

    python bench/serve.py --backend {ember,ray,bare} [--quick] [--json OUT]
    python bench/serve.py --all [--ray-python /tmp/ray-venv/bin/python] [--quick]

``ray`` runs this same file under ``--ray-python`` with ``/tmp/gen-shim`` first on
``PYTHONPATH`` (``import ember`` resolves to Ray there), so both run identical
application code. ``bare`` is the ceiling: one uvicorn + starlette process answering
the same no-op request with no Serve in between.

Applications (replicas ask for no CPU; the cluster has 2):

- ``noop``: one replica returning ``"ok"``;
- ``fake_nn``: the seed's fake_NN model (3 sigmoid layers of 1000x1000, from
  ``src/ember/examples/fake_nn_actors.py``), two replicas, one forward pass of a
  random 1000-vector per request;
- ``fake_nn_batched``: the same behind ``@serve.batch(max_batch_size=16,
  batch_wait_timeout_s=0.005)``: a batch is one matrix product per layer.

The load generator is aiohttp with 1, 16 and 64 concurrent clients, each sending
GET requests back to back for ``DURATION_S`` seconds after a short warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

PORT = 18690
CONCURRENCY = (1, 16, 64)
APPS = ("noop", "fake_nn", "fake_nn_batched")


def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


class FakeNN:
    """The seed's fake_NN: three random 1000x1000 sigmoid layers."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.layers = [(rng.random((1000, 1000)), rng.random(1000)) for _ in range(3)]

    def forward(self, x: Any) -> Any:
        for w, b in self.layers:
            x = sigmoid(x @ w + b)
        return x


async def load(url: str, clients: int, duration_s: float) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def client(session: Any) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                async with session.get(url) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:
        stop_at = time.perf_counter() + min(1.0, duration_s / 2)  # warm-up
        await asyncio.gather(*(client(session) for _ in range(clients)))
        latencies.clear()
        errors = 0
        start = time.perf_counter()
        stop_at = start + duration_s
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": errors,
    }


def run_serve(duration_s: float) -> dict[str, Any]:
    """ember or (under the shim) Ray: deploy each app and load it."""
    import ember
    from ember import serve

    ember.init(num_cpus=2)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Noop:
        async def __call__(self, request: Any) -> str:
            return "ok"

    @serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
    class Model:
        def __init__(self) -> None:
            self.model = FakeNN()

        def __call__(self, request: Any) -> float:
            return float(self.model.forward(np.random.rand(1000)).sum())

    @serve.deployment(
        num_replicas=2, max_ongoing_requests=32, ray_actor_options={"num_cpus": 0}
    )
    class BatchedModel:
        def __init__(self) -> None:
            self.model = FakeNN()

        @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
        async def predict(self, inputs: list[Any]) -> list[float]:
            out = self.model.forward(np.stack(inputs))
            return [float(row.sum()) for row in out]

        async def __call__(self, request: Any) -> float:
            return await self.predict(np.random.rand(1000))

    apps = {"noop": Noop, "fake_nn": Model, "fake_nn_batched": BatchedModel}
    results: dict[str, Any] = {}
    try:
        for name in APPS:
            serve.run(apps[name].bind(), name=name, route_prefix=f"/{name}")
            url = f"http://127.0.0.1:{PORT}/{name}"
            results[name] = {
                str(c): asyncio.run(load(url, c, duration_s)) for c in CONCURRENCY
            }
            serve.delete(name)
    finally:
        serve.shutdown()
        ember.shutdown()
    return results


def run_bare(duration_s: float) -> dict[str, Any]:
    """The ceiling: uvicorn + starlette in one process, no Serve."""
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def noop(request: Any) -> Any:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/noop", noop)])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False
        )
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        url = f"http://127.0.0.1:{PORT}/noop"
        return {
            "noop": {str(c): asyncio.run(load(url, c, duration_s)) for c in CONCURRENCY}
        }
    finally:
        server.should_exit = True
        t.join(10)


def run_backend(backend: str, ray_python: str, quick: bool) -> dict[str, Any]:
    args = [os.path.abspath(__file__), "--backend", backend, "--json", "-"]
    if quick:
        args.append("--quick")
    env = dict(os.environ)
    python = sys.executable
    if backend == "ray":
        python = ray_python
        env["PYTHONPATH"] = "/tmp/gen-shim"
    out = subprocess.run(
        [python, *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| app | clients | "
        + " | ".join(f"{b} req/s | {b} p50 ms | {b} p99 ms" for b in results)
        + " |",
        "|---|---|" + "---|" * (3 * len(results)),
    ]
    for app in APPS:
        for c in CONCURRENCY:
            cells = []
            for b in results:
                r = results[b].get(app, {}).get(str(c))
                cells += (
                    [f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}"]
                    if r
                    else ["-", "-", "-"]
                )
            lines.append(f"| {app} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("ember", "ray", "bare"))
    p.add_argument("--all", action="store_true")
    p.add_argument("--quick", action="store_true", help="1 s per point instead of 5 s")
    p.add_argument("--json", default=None, help="write the results here ('-': stdout)")
    p.add_argument("--ray-python", default="/tmp/ray-venv/bin/python")
    a = p.parse_args()
    duration = 1.0 if a.quick else 5.0
    if a.backend:
        res = run_bare(duration) if a.backend == "bare" else run_serve(duration)
        if a.json == "-":
            print(json.dumps(res))
        else:
            print(table({a.backend: res}))
            if a.json:
                with open(a.json, "w") as f:
                    json.dump(res, f, indent=1)
        return
    results = {
        b: run_backend(b, a.ray_python, a.quick) for b in ("ember", "ray", "bare")
    }
    for b, r in results.items():
        if "error" in r:
            print(f"{b} failed:\n{r['error']}", file=sys.stderr)
    print(table({b: r for b, r in results.items() if "error" not in r}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
