"""The embedded cluster of ``ember.init()``: metrics only when asked, never without the token.

By default it opens no TCP port at all (docs/security.md); asked with Ray's
``init(_metrics_export_port=...)``, its node daemon and control service serve
Prometheus text on 127.0.0.1; ``EMBER_METRICS=0`` turns that off again.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import wait_until

import ember
from ember.cli import cluster_client
from ember.common import session
from ember.metrics import names

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
