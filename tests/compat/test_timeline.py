"""``ray.timeline()``: the tasks run so far as Chrome trace events (passes on Ray too)."""

from __future__ import annotations

import json

import pytest
from tests.compat.conftest import wait_for_condition

import ember as ray

pytestmark = pytest.mark.cluster_only("task events are recorded by a cluster")


@ray.remote
def tick(i):
    return i


def _bars(trace, name):
    return [e for e in trace if e.get("ph") == "X" and name in e.get("name", "")]


def test_timeline_has_a_bar_per_task_and_writes_json(ray_start_regular, tmp_path):
    assert ray.get([tick.remote(i) for i in range(5)]) == list(range(5))
    wait_for_condition(lambda: len(_bars(ray.timeline(), "tick")) == 5, timeout=60)
    for bar in _bars(ray.timeline(), "tick"):
        assert bar["dur"] >= 0
        assert isinstance(bar["ts"], (int, float))
    out = tmp_path / "trace.json"
    assert ray.timeline(filename=str(out)) is None
    assert len(_bars(json.loads(out.read_text()), "tick")) == 5
