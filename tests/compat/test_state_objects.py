"""``ray.util.state``'s object calls: list_objects, get_objects, summarize_objects.

Only what Ray 2.60 and ember report alike for the same program is checked; the
suite passes unchanged on real Ray.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import ember as ray
from ember.util.state import get_objects, list_objects, summarize_objects

pytestmark = pytest.mark.cluster_only("the state API asks the cluster's processes")

FIELDS = {
    "object_id",
    "object_size",
    "task_status",
    "attempt_number",
    "reference_type",
    "call_site",
    "type",
    "pid",
    "ip",
}


def _mine(ref) -> list:
    return list_objects(
        filters=[("object_id", "=", ref.hex())], raise_on_missing_output=False
    )


def test_a_large_put_is_a_local_reference_until_a_value_read_from_it_pins_it(
    ray_start_regular,
):
    ref = ray.put(np.zeros(500_000))
    (obj,) = _mine(ref)
    assert set(obj.asdict()) == FIELDS
    assert obj.reference_type == "LOCAL_REFERENCE"
    assert obj.type == "DRIVER"
    assert obj.pid == os.getpid()
    assert obj.object_size >= 4_000_000
    assert obj.task_status == "FINISHED"
    assert obj.attempt_number == 1
    assert obj.call_site == "disabled"
    assert obj["object_id"] == ref.hex()
    value = ray.get(ref)
    (obj,) = _mine(ref)
    assert obj.reference_type == "PINNED_IN_MEMORY"
    hex_id = ref.hex()
    del ref  # the array read from it keeps the object pinned
    (obj,) = list_objects(
        filters=[("object_id", "=", hex_id)], raise_on_missing_output=False
    )
    assert obj.reference_type == "PINNED_IN_MEMORY"
    assert obj.task_status == "NIL"
    assert value.sum() == 0


def test_a_task_return_read_by_the_driver_is_pinned(ray_start_regular):
    @ray.remote
    def make():
        return np.zeros(500_000)

    ref = make.remote()
    value = ray.get(ref)
    (obj,) = _mine(ref)
    assert obj.reference_type == "PINNED_IN_MEMORY"
    assert obj.task_status == "FINISHED"
    assert value.shape == (500_000,)


def test_an_actor_handle_is_listed_for_its_holder(ray_start_regular, counter_cls):
    counter = counter_cls.remote()
    assert ray.get(counter.incr.remote()) == 1
    handles = list_objects(
        filters=[("reference_type", "=", "ACTOR_HANDLE")], raise_on_missing_output=False
    )
    mine = [h for h in handles if h.pid == os.getpid()]
    assert len(mine) == 1
    assert mine[0].object_size == -1
    assert mine[0].task_status == "NIL"


def test_get_objects_returns_every_holder_or_none(ray_start_regular):
    ref = ray.put(np.zeros(500_000))
    got = get_objects(ref.hex())
    assert [o.object_id for o in got] == [ref.hex()]
    assert got[0].pid == os.getpid()


def test_a_ref_passed_to_a_running_task_is_used_by_it(ray_start_regular, signal_cls):
    @ray.remote
    def wait_then(x, signal):
        ray.get(signal.wait.remote())
        return x

    signal = signal_cls.remote()
    arg = ray.put(7)
    out = wait_then.remote(arg, signal)
    types = {o.reference_type for o in _mine(arg) if o.type == "DRIVER"}
    assert "USED_BY_PENDING_TASK" in types
    ray.get(signal.send.remote())
    assert ray.get(out) == 7


def test_summary_by_call_site_counts_the_objects(ray_start_regular):
    refs = [ray.put(np.zeros(500_000)) for _ in range(3)]
    summary = summarize_objects(raise_on_missing_output=False)["cluster"]
    assert summary["callsite_enabled"] is False
    assert summary["summary_by"] == "callsite"
    group = summary["summary"]["disabled"]
    assert group["total_objects"] >= 3
    assert group["ref_type_counts"]["LOCAL_REFERENCE"] >= 3
    assert summary["total_size_mb"] >= 3 * 3.8
    assert set(group) >= {
        "total_objects",
        "total_size_mb",
        "total_num_workers",
        "total_num_nodes",
        "task_state_counts",
        "task_attempt_number_counts",
        "ref_type_counts",
    }
    del refs


def test_filters_are_case_insensitive_for_strings(ray_start_regular):
    ref = ray.put(np.zeros(500_000))
    value = ray.get(ref)
    got = list_objects(
        filters=[("reference_type", "=", "pinned_in_memory")],
        raise_on_missing_output=False,
    )
    assert ref.hex() in {o.object_id for o in got}
    assert value.sum() == 0
