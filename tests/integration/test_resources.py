"""Resources on one node: GPUs per worker, custom resources, infeasible requests."""

from __future__ import annotations

import os

import pytest
from tests.conftest import wait_until

import ember

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2, num_gpus=2, resources={"widget": 1})
    yield
    ember.shutdown()


def test_gpu_tasks_see_their_cuda_visible_devices(cluster):
    @ember.remote(num_gpus=1)
    def visible():
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    seen = set(ember.get([visible.remote() for _ in range(4)]))
    assert seen
    assert seen <= {"0", "1"}


def test_infeasible_request_warns_naming_the_task(cluster, capfd):
    @ember.remote(resources={"gizmo": 1})
    def needs_gizmo():
        return 1

    ref = needs_gizmo.remote()
    ready, _ = ember.wait([ref], timeout=0.5)
    assert not ready  # stays pending: a node with a gizmo may still join

    def warned():
        err = capfd.readouterr().err
        warned.seen += err
        return "needs_gizmo" in warned.seen and "gizmo: 1" in warned.seen

    warned.seen = ""
    assert wait_until(warned, 15)
    ember.cancel(ref)


def test_custom_resource_is_held_while_task_runs(cluster):
    @ember.remote
    class Gate:
        def __init__(self):
            self.open = False

        def release(self):
            self.open = True

        def is_open(self):
            return self.open

    gate = Gate.remote()

    @ember.remote(resources={"widget": 1}, num_cpus=0)
    def hold(g):
        while not ember.get(g.is_open.remote()):
            pass
        return "done"

    ref = hold.remote(gate)
    assert wait_until(lambda: ember.available_resources().get("widget", 0) == 0, 15)
    ember.get(gate.release.remote())
    assert ember.get(ref, timeout=60) == "done"
    assert wait_until(lambda: ember.available_resources().get("widget", 0) == 1, 15)
