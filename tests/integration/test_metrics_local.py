"""The embedded cluster of ``ember.init()``: metrics only when asked, never without the token.

By default it opens no TCP port at all (docs/security.md); asked with Ray's
``init(_metrics_export_port=...)``, its node daemon and control service serve
Prometheus text on 127.0.0.1; ``EMBER_METRICS=0`` turns that off again.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import wait_until
from tests.integration.test_memory_monitor import eat_memory, low_threshold

import ember
from ember.cli import cluster_client
from ember.common import session
from ember.exceptions import OutOfMemoryError, WorkerCrashedError
from ember.metrics import names
from ember.node.memory_monitor import REFRESH_ENV, SCOPE_ENV, THRESHOLD_ENV

pytestmark = pytest.mark.multiprocess


def get(url: str, token: str | None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def values(text: str, name: str) -> list[float]:
    return [
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]


@pytest.fixture
def shutdown():
    yield
    if ember.is_initialized():
        ember.shutdown()


def test_no_endpoint_unless_asked(shutdown):
    ember.init(num_cpus=1)
    (node,) = ember.nodes()
    assert node["MetricsExportPort"] == 0
    rec = session.read_cluster_record()
    status = cluster_client.get_status(
        rec["control_address"], rec["token"], find_tls=False
    )
    assert status.metrics_address == ""


def test_asked_for_it_serves_on_localhost_with_the_token(shutdown):
    ember.init(num_cpus=1, _metrics_export_port=0)
    (node,) = ember.nodes()
    port = node["MetricsExportPort"]
    assert port > 0
    rec = session.read_cluster_record()
    token = rec["token"]
    status = cluster_client.get_status(rec["control_address"], token, find_tls=False)
    host, _, _ = status.metrics_address.rpartition(":")
    assert host == "127.0.0.1"
    urls = [
        f"http://127.0.0.1:{port}/metrics",
        f"http://{status.metrics_address}/metrics",
    ]
    for url in urls:
        assert get(url, None)[0] == 401
        assert get(url, token)[0] == 200
    _, text = get(urls[0], token)
    for name in names.NODE_METRICS:
        assert f"# TYPE {name} " in text, name

    from ember.util.metrics import Gauge

    Gauge("local_depth", tag_keys=("q",)).set(5, tags={"q": "in"})
    assert wait_until(
        lambda: values(get(urls[0], token)[1], "ember_local_depth") == [5.0], 30
    )


def test_ember_metrics_0_turns_it_off(shutdown, monkeypatch):
    monkeypatch.setenv("EMBER_METRICS", "0")
    ember.init(num_cpus=1, _metrics_export_port=0)
    (node,) = ember.nodes()
    assert node["MetricsExportPort"] == 0


def samples_of(text: str, name: str) -> list:
    return [
        s
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]


def test_memory_kills_and_crashes_are_counted(shutdown, monkeypatch):
    # as tests/integration/test_memory_monitor.py: only the node's own processes
    # count, the threshold 400 MB above an idle cluster's use
    monkeypatch.setenv(THRESHOLD_ENV, f"{low_threshold():.4f}")
    monkeypatch.setenv(REFRESH_ENV, "100")
    monkeypatch.setenv(SCOPE_ENV, "node")
    ember.init(num_cpus=2, _metrics_export_port=0)
    (node,) = ember.nodes()
    url = f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"
    token = session.read_cluster_record()["token"]

    def counted(name: str) -> list:
        return samples_of(get(url, token)[1], name)

    assert [s.value for s in counted(names.UNEXPECTED_WORKER_FAILURES)] == [0]
    assert counted(names.MEMORY_EVICTIONS) == []

    @ember.remote(max_retries=0)
    def greedy() -> str:
        return eat_memory()

    @ember.remote(max_retries=0)
    def crash() -> None:
        os._exit(3)

    with pytest.raises(OutOfMemoryError):
        ember.get(greedy.remote(), timeout=180)
    with pytest.raises(WorkerCrashedError):
        ember.get(crash.remote(), timeout=60)
    (evicted,) = counted(names.MEMORY_EVICTIONS)
    assert evicted.labels["Type"] == "Task"
    assert "greedy" in evicted.labels["Name"]
    assert evicted.value == 1
    # the killed worker and the one that exited with code 3
    assert wait_until(
        lambda: [s.value for s in counted(names.UNEXPECTED_WORKER_FAILURES)] == [2], 30
    )
