"""Placement groups: a request that fits no bundle is rejected at submission; removing a
group fails the tasks queued or running in it and kills its actors."""

from __future__ import annotations

import os
import time

import pytest

import ember as ray
from ember import exceptions
from ember.util.placement_group import placement_group, remove_placement_group
from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

_RUNNING_TASK_ERRORS = (
    exceptions.TaskPlacementGroupRemoved,
    exceptions.WorkerCrashedError,
)


def _in(pg, **kw):
    return PlacementGroupSchedulingStrategy(placement_group=pg, **kw)


@ray.remote(num_cpus=1)
def one():
    return 1


@ray.remote(num_cpus=1)
class Pinger:
    def ping(self):
        return "pong"


@pytest.fixture
def group(ray_module):
    groups = []

    def make(bundles):
        pg = placement_group(bundles)
        ray.get(pg.ready(), timeout=60)
        groups.append(pg)
        return pg

    yield make
    for pg in groups:
        remove_placement_group(pg)


def _hold_until(flag_dir):
    """A task that occupies its CPU (spinning, not blocked in get) until a file appears."""

    @ray.remote(num_cpus=1, max_retries=0)
    def hold():
        open(os.path.join(flag_dir, "started"), "w").close()
        while not os.path.exists(os.path.join(flag_dir, "release")):
            time.sleep(0.01)
        return "done"

    return hold


def test_request_larger_than_every_bundle_is_rejected(group):
    pg = group([{"CPU": 1}, {"CPU": 0.5}])
    with pytest.raises(ValueError, match="cannot fit into any bundles") as info:
        one.options(num_cpus=2, scheduling_strategy=_in(pg)).remote()
    assert str(info.value) == (
        "Cannot schedule one with the placement group because the resource request "
        "{'CPU': 2} cannot fit into any bundles for the placement group, "
        "[{'CPU': 1.0}, {'CPU': 0.5}]."
    )
    with pytest.raises(ValueError, match="cannot fit into any bundles"):
        one.options(resources={"custom": 1}, scheduling_strategy=_in(pg)).remote()
    with pytest.raises(ValueError, match="cannot fit into any bundles"):
        Pinger.options(num_cpus=2, scheduling_strategy=_in(pg)).remote()
    # the check is against any bundle, whatever the bundle index (bundle 1 is too
    # small for this task, which is accepted and stays pending)
    ref = one.options(
        scheduling_strategy=_in(pg, placement_group_bundle_index=1)
    ).remote()
    ray.cancel(ref)
    assert ray.get(one.options(scheduling_strategy=_in(pg)).remote(), timeout=60) == 1


def test_default_actor_needs_a_bundle_with_a_cpu(group):
    pg = group([{"custom": 1}])

    @ray.remote
    class NoCpu:
        def ping(self):
            return 1

    with pytest.raises(ValueError, match="requires 1 CPU for creation"):
        NoCpu.options(scheduling_strategy=_in(pg)).remote()
    a = NoCpu.options(num_cpus=0, scheduling_strategy=_in(pg)).remote()
    assert ray.get(a.ping.remote(), timeout=60) == 1


@pytest.mark.cluster_only("a task must be running while the group is removed")
def test_running_and_queued_tasks_fail_when_their_group_is_removed(
    ray_module, tmp_path, wait_for
):
    pg = placement_group([{"CPU": 1}])
    ray.get(pg.ready(), timeout=60)
    running = _hold_until(str(tmp_path)).options(scheduling_strategy=_in(pg)).remote()
    wait_for(lambda: (tmp_path / "started").exists(), message="task started")
    queued = one.options(scheduling_strategy=_in(pg)).remote()
    ready, _ = ray.wait([queued], timeout=0.5)
    assert ready == []  # the group's only CPU is busy
    remove_placement_group(pg)
    # Ray stops the worker; the owner sees either error, depending on what it learns
    # first (ember: always TaskPlacementGroupRemoved, see the ember_only test below)
    with pytest.raises(_RUNNING_TASK_ERRORS):
        ray.get(running, timeout=60)
    with pytest.raises(exceptions.TaskPlacementGroupRemoved) as info:
        ray.get(queued, timeout=60)
    assert isinstance(info.value, exceptions.RayError)
    assert "placement group" in str(info.value)


@pytest.mark.cluster_only("local mode does not kill actors")
def test_actor_in_a_removed_group_dies(ray_module, wait_for):
    pg = placement_group([{"CPU": 1}])
    ray.get(pg.ready(), timeout=60)
    a = Pinger.options(scheduling_strategy=_in(pg)).remote()
    assert ray.get(a.ping.remote(), timeout=60) == "pong"
    remove_placement_group(pg)

    def dead_for_the_group():
        try:
            ray.get(a.ping.remote(), timeout=60)
        except exceptions.ActorDiedError as e:
            return "placement group was removed" in str(e)
        return False

    wait_for(dead_for_the_group, timeout=60, message="actor killed with its group")


@pytest.mark.cluster_only("an actor must wait for a busy group while it is removed")
def test_pending_actor_of_a_removed_group_is_unschedulable(
    ray_module, tmp_path, wait_for
):
    pg = placement_group([{"CPU": 1}])
    ray.get(pg.ready(), timeout=60)
    busy = _hold_until(str(tmp_path)).options(scheduling_strategy=_in(pg)).remote()
    wait_for(lambda: (tmp_path / "started").exists(), message="task started")
    a = Pinger.options(scheduling_strategy=_in(pg)).remote()
    call = a.ping.remote()
    ready, _ = ray.wait([call], timeout=0.5)
    assert ready == []  # the actor waits for the group's only CPU
    remove_placement_group(pg)
    with pytest.raises(exceptions.ActorUnschedulableError, match="placement group"):
        ray.get(call, timeout=60)
    with pytest.raises(_RUNNING_TASK_ERRORS):
        ray.get(busy, timeout=60)


@pytest.mark.ember_only
@pytest.mark.cluster_only("removal does not affect local-mode calls")
def test_submitting_into_a_removed_group_fails_instead_of_hanging(
    ray_module, tmp_path, wait_for
):
    # Ray 2.60 leaves these pending forever (or restarting, for an actor with
    # max_restarts); ember fails them with Ray's errors.
    pg = placement_group([{"CPU": 1}, {"CPU": 1}])
    ray.get(pg.ready(), timeout=60)
    restartable = Pinger.options(scheduling_strategy=_in(pg), max_restarts=2).remote()
    assert ray.get(restartable.ping.remote(), timeout=60) == "pong"
    retried = (
        _hold_until(str(tmp_path))
        .options(scheduling_strategy=_in(pg), max_retries=2)
        .remote()
    )
    wait_for(lambda: (tmp_path / "started").exists(), message="task started")
    remove_placement_group(pg)
    with pytest.raises(exceptions.TaskPlacementGroupRemoved):
        ray.get(retried, timeout=60)
    with pytest.raises(exceptions.TaskPlacementGroupRemoved):
        ray.get(one.options(scheduling_strategy=_in(pg)).remote(), timeout=60)
    late = Pinger.options(scheduling_strategy=_in(pg)).remote()
    with pytest.raises(exceptions.ActorUnschedulableError):
        ray.get(late.ping.remote(), timeout=60)

    # killed with its group, and not restarted despite max_restarts
    def dead_for_the_group():
        try:
            ray.get(restartable.ping.remote(), timeout=60)
        except exceptions.ActorDiedError as e:
            return "placement group was removed" in str(e)
        return False

    wait_for(dead_for_the_group, timeout=60, message="actor killed with its group")
