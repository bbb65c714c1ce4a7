"""``ray.util.metrics``: Counter, Gauge and Histogram behave as Ray 2.60's (arguments, errors, tags).

What they export is checked against a real cluster in
``tests/integration/test_metrics_cluster.py``; here: what a user sees in the
calling process, the same on Ray.
"""

from __future__ import annotations

import pickle
import warnings

import pytest

import ember as ray
from ember.util.metrics import Counter, Gauge, Histogram


def test_empty_name_raises():
    for cls in (Counter, Gauge):
        with pytest.raises(ValueError, match="Empty name is not allowed"):
            cls("")
    with pytest.raises(ValueError, match="Empty name is not allowed"):
        Histogram("", boundaries=[1.0])


def test_invalid_name_warns_and_records_nothing():
    with pytest.warns(UserWarning, match="Invalid metric name: 1st_requests"):
        c = Counter("1st_requests", tag_keys=("route",))
    # discarded: even a record without its tag is accepted and dropped
    c.inc()
    c.inc(2.5, tags={"route": "/"})


def test_colon_in_name_is_deprecated():
    with pytest.warns(FutureWarning, match="contains a : character"):
        Gauge("old:style")


def test_tag_keys_must_be_a_tuple_of_str():
    with pytest.raises(TypeError, match="tag_keys should be a tuple type"):
        Counter("requests", tag_keys=["route"])
    with pytest.raises(TypeError, match="Tag keys must be str"):
        Gauge("depth", tag_keys=("queue", 3))


def test_default_tags():
    c = Counter("requests_by_route", tag_keys=("route", "method"))
    assert c.set_default_tags({"route": "/"}) is c
    with pytest.raises(ValueError, match="Unrecognized tag key region"):
        c.set_default_tags({"region": "us"})
    with pytest.raises(TypeError, match="Tag values must be str"):
        c.set_default_tags({"route": 1})
    assert c.info == {
        "name": "requests_by_route",
        "description": "",
        "tag_keys": ("route", "method"),
        "default_tags": {"route": "/"},
    }


def test_every_tag_key_needs_a_value(ray_start_regular):
    c = Counter("calls", description="calls made", tag_keys=("a", "b"))
    with pytest.raises(ValueError, match=r"Missing value for tag key\(s\): a,b\."):
        c.inc()
    c.set_default_tags({"a": "1"})
    with pytest.raises(ValueError, match=r"Missing value for tag key\(s\): b\."):
        c.inc(1)
    with pytest.raises(TypeError, match="Tag values must be str"):
        c.inc(1, tags={"b": 2})
    c.inc(1, tags={"b": "2"})
    c.inc(2.5, tags={"a": "x", "b": "y"})


def test_counter_values(ray_start_regular):
    c = Counter("bytes_sent")
    with pytest.raises(ValueError, match="value must be >0, got 0"):
        c.inc(0)
    with pytest.raises(ValueError, match="value must be >0, got -1"):
        c.inc(-1)
    with pytest.raises(TypeError, match="value must be int or float"):
        c.inc("1")
    c.inc()
    c.inc(3)


def test_gauge_values(ray_start_regular):
    g = Gauge("queue_depth", tag_keys=("queue",))
    g.set(None)  # no-op, even without its tags
    with pytest.raises(TypeError, match="value must be int or float"):
        g.set("3", tags={"queue": "q"})
    g.set(3, tags={"queue": "q"})
    g.set(-1.5, tags={"queue": "q"})


def test_histogram_boundaries(ray_start_regular):
    with pytest.raises(ValueError, match="boundaries argument should be provided"):
        Histogram("latency")
    with pytest.raises(ValueError, match="boundaries argument should be provided"):
        Histogram("latency", boundaries=[])
    with pytest.raises(ValueError, match="Invalid `boundaries` argument at index 1"):
        Histogram("latency", boundaries=[1.0, 0.0])
    h = Histogram("latency_s", description="d", boundaries=[0.1, 1.0])
    assert h.boundaries == [0.1, 1.0]
    assert h.info["boundaries"] == [0.1, 1.0]
    with pytest.raises(TypeError, match="value must be int or float"):
        h.observe(None)
    h.observe(0.05)
    h.observe(7)


def test_metrics_pickle_without_their_default_tags():
    c = Counter("pickled", description="p", tag_keys=("k",)).set_default_tags(
        {"k": "v"}
    )
    h = Histogram("pickled_h", boundaries=[1.0], tag_keys=("k",))
    c2, h2 = pickle.loads(pickle.dumps((c, h)))
    assert c2.info == {
        "name": "pickled",
        "description": "p",
        "tag_keys": ("k",),
        "default_tags": {},
    }
    assert h2.info["boundaries"] == [1.0]


def test_usable_in_tasks_and_actors(ray_start_regular):
    @ray.remote
    def work(n):
        c = Counter("task_items", tag_keys=("kind",))
        for _ in range(n):
            c.inc(tags={"kind": "a"})
        Gauge("task_gauge").set(n)
        Histogram("task_hist", boundaries=[1, 10]).observe(n)
        return n

    @ray.remote
    class Recorder:
        def __init__(self):
            self.c = Counter("actor_calls", tag_keys=("method",))

        def call(self):
            self.c.inc(tags={"method": "call"})
            return "ok"

    outer = Counter("captured_counter")

    @ray.remote
    def uses_captured():
        outer.inc(2)
        return "ok"

    assert ray.get([work.remote(3), work.remote(1)]) == [3, 1]
    r = Recorder.remote()
    assert ray.get([r.call.remote() for _ in range(3)]) == ["ok"] * 3
    assert ray.get(uses_captured.remote()) == "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Counter("driver_side").inc()
