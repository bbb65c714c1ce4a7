"""ember.serve under a steady load generator: autoscaling, rolling updates, kills."""

from __future__ import annotations

import asyncio
import http.client
import threading
import urllib.error

import pytest

pytest.importorskip("starlette")

from tests.integration.serve_cluster import (
    http_get,
    replica_count,
    start,
    stop,
    wait_for,
)

import ember
from ember import serve
from ember.serve._common import NAMESPACE, PROXY_NAME, replica_actor_name

# heavy (autoscaling, kills, restarts, a CLI cluster): in the slow run
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
PORT = 18630
BASE = f"http://127.0.0.1:{PORT}"
NO_CPU = {"num_cpus": 0}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    start(PORT)
    yield
    stop()


class Load:
    """Threads calling ``call()`` until stopped; counts answers and failures."""

    def __init__(self, call, threads: int = 4) -> None:
        self.call = call
        self.ok: list[object] = []
        self.failed: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.call()
            except Exception as e:
                with self._lock:
                    self.failed.append(e)
                continue
            with self._lock:
                self.ok.append(value)

    def answers(self) -> int:
        with self._lock:
            return len(self.ok)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


@serve.deployment(
    ray_actor_options=NO_CPU,
    max_ongoing_requests=2,
    autoscaling_config={
        "min_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": 1,
        "upscale_delay_s": 0,
        "downscale_delay_s": 1,
        "metrics_interval_s": 0.1,
        "look_back_period_s": 0.5,
    },
    graceful_shutdown_wait_loop_s=0.2,
)
class Elastic:
    async def __call__(self) -> str:
        await asyncio.sleep(0.05)  # the work a request does
        return serve.get_replica_context().replica_tag


@pytest.mark.slow
def test_autoscaling_adds_replicas_under_load_and_removes_them_after():
    h = serve.run(Elastic.bind(), name="elastic", route_prefix=None)
    assert replica_count("elastic", "Elastic") == 1
    load = Load(lambda: h.remote().result(timeout_s=60), threads=6)
    try:
        wait_for(lambda: replica_count("elastic", "Elastic") == 3, what="3 replicas")
        n = load.answers()
        wait_for(lambda: load.answers() > n + 20, what="answers from the new replicas")
    finally:
        load.stop()
    assert len(set(load.ok[-20:])) > 1  # the load spread over the replicas
    wait_for(lambda: replica_count("elastic", "Elastic") == 1, what="scale back to 1")
    assert load.failed == []
    serve.delete("elastic")


@serve.deployment(
    ray_actor_options=NO_CPU,
    num_replicas=2,
    graceful_shutdown_wait_loop_s=0.3,
    graceful_shutdown_timeout_s=5,
    health_check_period_s=0.5,
    health_check_timeout_s=5,
)
class Versioned:
    def __init__(self, version: str) -> None:
        self.version = version

    async def __call__(self) -> str:
        await asyncio.sleep(0.01)
        return self.version

    def tag(self) -> str:
        return serve.get_replica_context().replica_tag


def test_rolling_update_under_load_drops_no_request():
    h = serve.run(Versioned.bind("v1"), name="roll", route_prefix=None)
    load = Load(lambda: h.remote().result(timeout_s=60))
    try:
        wait_for(lambda: load.answers() > 20, what="v1 answers")
        serve.run(Versioned.bind("v2"), name="roll", route_prefix=None)
        n = load.answers()
        wait_for(lambda: load.answers() > n + 20, what="answers after the update")
    finally:
        load.stop()
    assert load.failed == []
    assert load.ok[0] == "v1"
    assert load.ok[-1] == "v2"
    assert (
        serve.status().applications["roll"].deployments["Versioned"].status == "HEALTHY"
    )
    serve.delete("roll")


def test_replica_kill_under_load_loses_only_its_in_flight_requests():
    h = serve.run(Versioned.bind("v1"), name="kill", route_prefix=None)
    victim = h.tag.remote().result()
    load = Load(lambda: h.remote().result(timeout_s=60))
    try:
        wait_for(lambda: load.answers() > 20, what="answers")
        actor = ember.get_actor(
            replica_actor_name("kill", "Versioned", victim), namespace=NAMESPACE
        )
        ember.kill(actor)
        wait_for(
            lambda: (
                replica_count("kill", "Versioned") == 2
                and victim not in {h.tag.remote().result() for _ in range(10)}
            ),
            what="a replacement replica",
        )
        n = load.answers()
        wait_for(lambda: load.answers() > n + 20, what="answers after the kill")
    finally:
        load.stop()
    # at most max_ongoing_requests (5) calls were on the killed replica
    assert len(load.failed) <= 5, load.failed
    assert all(isinstance(e, ember.exceptions.ActorError) for e in load.failed), (
        load.failed
    )
    serve.delete("kill")


@serve.deployment(ray_actor_options=NO_CPU)
def pong(request) -> str:
    return "pong"


def _http_call() -> bytes:
    """One request; a refused connection is retried (the request was never accepted)."""
    while True:
        try:
            status, _, body = http_get(f"{BASE}/pong", timeout=30)
        except urllib.error.URLError as e:
            if isinstance(e.reason, ConnectionRefusedError):
                continue
            raise
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body!r}")
        return body


@pytest.mark.slow
def test_proxy_kill_under_load_is_recovered():
    serve.run(pong.bind(), name="pong", route_prefix="/pong")
    load = Load(_http_call, threads=2)
    try:
        wait_for(lambda: load.answers() > 10, what="answers")
        proxy = ember.get_actor(PROXY_NAME, namespace=NAMESPACE)
        ember.kill(proxy, no_restart=False)
        n = load.answers()
        wait_for(
            lambda: load.answers() > n + 10, what="answers from the restarted proxy"
        )
    finally:
        load.stop()
    # only connections the killed proxy held (in flight, or waiting in its accept
    # backlog: one per client thread each) are lost; no request got a 5xx
    assert len(load.failed) <= 4, load.failed
    lost = (ConnectionError, http.client.HTTPException)
    assert all(isinstance(e, lost) for e in load.failed), load.failed
    serve.delete("pong")
