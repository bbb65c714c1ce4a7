"""Shared pieces of the Serve integration tests: a cluster with Serve on a test port."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import ember
from ember import serve


def start(port: int, num_cpus: int = 4) -> None:
    ember.init(num_cpus=num_cpus)
    serve.start(http_options={"host": "127.0.0.1", "port": port})


def stop() -> None:
    try:
        serve.shutdown()
    finally:
        ember.shutdown()


def http(
    url: str,
    data: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 30,
):
    """(status, content-type, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("content-type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.read()
    except TimeoutError:
        return 0, None, b""  # no answer within the timeout


http_get = http


def http_json(url: str, **kw):
    status, _, body = http(url, **kw)
    assert status == 200, (status, body)
    return json.loads(body)


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def replica_count(app: str, dep: str) -> int:
    st = serve.status().applications.get(app)
    if st is None or dep not in st.deployments:
        return 0
    return sum(
        n for s, n in st.deployments[dep].replica_states.items() if s == "RUNNING"
    )
