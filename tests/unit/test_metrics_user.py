"""User metrics on their way: a process's buffer, the node's store, the exported text.

Pure: a :class:`PointBuffer` is drained by hand (the core worker's loop does it
every second in a real process) and its points fed to a :class:`UserMetricStore`,
as ``node.report_metrics`` does.
"""

from __future__ import annotations

import logging

import msgspec
import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ember.metrics.families import Families
from ember.metrics.user_collector import UserMetricsCollector
from ember.metrics.user_points import PointBuffer
from ember.metrics.user_store import UserMetricStore, label_name
from ember.protocol.messages import SCHEMA, MetricPoint, ReportMetricsRequest

FAM = Families(lambda: {"SessionName": "s", "NodeAddress": "1.2.3.4"})


def export(store: UserMetricStore) -> dict[str, list]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(UserMetricsCollector(FAM, store))
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def sample(samples, **labels):
    hits = [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (labels, samples)
    return hits[0].value


def tags(**kw: str):
    return tuple(sorted(kw.items()))


def test_buffer_sums_counters_keeps_last_gauge_and_buckets_histograms():
    b = PointBuffer()
    b.define("req", "counter", "requests")
    b.define("depth", "gauge", "")
    b.define("lat", "histogram", "", (0.1, 1.0))
    b.inc("req", tags(route="/a"), 1)
    b.inc("req", tags(route="/a"), 2)
    b.inc("req", tags(route="/b"), 1)
    b.set("depth", (), 5)
    b.set("depth", (), 3)
    for v in (0.05, 0.1, 0.5, 9.0):
        b.observe("lat", (), v)
    points = {(p.name, tuple(sorted(p.tags.items()))): p for p in b.drain()}
    assert points[("req", tags(route="/a"))].value == 3
    assert points[("req", tags(route="/a"))].description == "requests"
    assert points[("req", tags(route="/b"))].value == 1
    assert points[("depth", ())].value == 3
    lat = points[("lat", ())]
    assert lat.buckets == [2, 1, 1]  # le 0.1 (0.05 and 0.1), le 1.0, past every bound
    assert lat.total == pytest.approx(9.65)
    assert lat.boundaries == [0.1, 1.0]
    # drained: only what changes from now on is reported next time
    assert b.drain() == []
    b.inc("req", tags(route="/a"), 4)
    (again,) = b.drain()
    assert again.value == 4


def test_points_travel_in_a_report_message():
    b = PointBuffer()
    b.define("lat", "histogram", "", (1.0,))
    b.observe("lat", tags(route="/"), 2.0)
    wire = msgspec.msgpack.encode(ReportMetricsRequest(points=b.drain()))
    got = SCHEMA.decode_request("node.report_metrics", msgspec.Raw(wire))
    (p,) = got.points
    assert (p.name, p.kind, p.tags, p.buckets, p.total) == (
        "lat",
        "histogram",
        {"route": "/"},
        [0, 1],
        2.0,
    )


def test_points_that_could_not_be_sent_come_back():
    b = PointBuffer()
    b.define("req", "counter", "")
    b.define("lat", "histogram", "", (1.0,))
    b.inc("req", (), 2)
    b.observe("lat", (), 0.5)
    lost = b.drain()
    b.inc("req", (), 1)
    b.put_back(lost)
    got = {p.name: p for p in b.drain()}
    assert got["req"].value == 3
    assert got["lat"].buckets == [1, 0]


def test_buffer_bounds_its_series(caplog):
    b = PointBuffer(max_series=2)
    b.define("x", "gauge", "")
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            b.set("x", tags(i=str(i)), i)
    assert len(b.drain()) == 2
    assert sum("new ones are dropped" in r.message for r in caplog.records) == 1


def test_node_store_adds_up_processes_and_exports_rays_shape():
    store = UserMetricStore()
    # two processes report the same series
    for _ in range(2):
        store.add([
            MetricPoint(name="requests", kind="counter", description="reqs",
                        tags={"route": "/a"}, value=2),
            MetricPoint(name="depth", kind="gauge", tags={"q": "x"}, value=7),
            MetricPoint(name="lat", kind="histogram", boundaries=[0.1, 1.0],
                        buckets=[1, 0, 1], total=3.05),
        ])  # fmt: skip
    store.add([MetricPoint(name="depth", kind="gauge", tags={"q": "x"}, value=1)])
    got = export(store)
    assert sample(got["ember_requests_total"], route="/a") == 4
    assert sample(got["ember_requests_total"], SessionName="s", NodeAddress="1.2.3.4")
    assert sample(got["ember_depth"], q="x") == 1
    le = {s.labels["le"]: s.value for s in got["ember_lat_bucket"]}
    assert le == {"0.1": 2, "1.0": 2, "+Inf": 4}
    assert sample(got["ember_lat_sum"]) == pytest.approx(6.1)
    assert sample(got["ember_lat_count"]) == 4


def test_node_store_drops_clashes_and_kind_changes(caplog):
    store = UserMetricStore()
    with caplog.at_level(logging.WARNING):
        store.add([
            MetricPoint(name="tasks", kind="gauge", value=1),  # ember_tasks is ember's
            MetricPoint(name="mine", kind="counter", value=1),
            MetricPoint(name="mine", kind="gauge", value=5),
        ])  # fmt: skip
    got = export(store)
    assert "ember_tasks" not in got
    assert sample(got["ember_mine_total"]) == 1
    assert "ember_mine" not in got
    assert any("clashes" in r.message for r in caplog.records)


def test_tag_keys_become_valid_label_names():
    assert label_name("route") == "route"
    assert label_name("http.route") == "http_route"
    assert label_name("1x") == "_1x"
    store = UserMetricStore()
    store.add([
        MetricPoint(name="odd", kind="gauge", tags={"a-b": "1", "SessionName": "fake"},
                    value=2),
        MetricPoint(name="odd", kind="gauge", tags={"c": "z"}, value=3),
    ])  # fmt: skip
    got = export(store)
    # the common labels stay the node's; a series without a tag has it empty
    assert sample(got["ember_odd"], a_b="1", c="") == 2
    assert sample(got["ember_odd"], a_b="", c="z", SessionName="s") == 3


def test_node_store_bounds_its_series():
    store = UserMetricStore(max_series=3)
    store.add(
        [
            MetricPoint(name="g", kind="gauge", tags={"i": str(i)}, value=i)
            for i in range(9)
        ]
    )
    assert len(export(store)["ember_g"]) == 3
