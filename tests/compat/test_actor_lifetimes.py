"""Actor lifetimes as in Ray 2.60: a named, non-detached actor dies with its
creator's last handle (a ``get_actor`` handle does not keep it alive) and its name
is free again; concurrency groups an actor does not define are refused."""

from __future__ import annotations

import gc

import pytest

import ember as ray
from ember import exceptions

DROPS_ACTORS = "local mode keeps every actor until shutdown"


@ray.remote(num_cpus=0)
class Named:
    def __init__(self, value=0):
        self.value = value

    def read(self):
        return self.value


def _name_released(name):
    def released():
        try:
            ray.get_actor(name)
        except ValueError:
            return True
        return False

    return released


@pytest.mark.cluster_only(DROPS_ACTORS)
def test_named_actor_dies_with_its_creators_last_handle(ray_module, wait_for):
    a = Named.options(name="compat-gc-named").remote(1)
    assert ray.get(a.read.remote(), timeout=60) == 1
    del a
    gc.collect()
    wait_for(_name_released("compat-gc-named"), message="the name is released")
    # the name can be taken again at once
    b = Named.options(name="compat-gc-named").remote(2)
    assert ray.get(ray.get_actor("compat-gc-named").read.remote(), timeout=60) == 2
    ray.kill(b)


@pytest.mark.cluster_only(DROPS_ACTORS)
def test_get_actor_handle_does_not_keep_a_named_actor_alive(ray_module, wait_for):
    a = Named.options(name="compat-gc-held").remote(3)
    held = ray.get_actor("compat-gc-held")
    assert ray.get(held.read.remote(), timeout=60) == 3
    del a
    gc.collect()

    def calls_fail():
        try:
            ray.get(held.read.remote(), timeout=60)
        except exceptions.RayActorError:
            return True
        return False

    wait_for(calls_fail, message="the actor is dead")
    with pytest.raises(exceptions.RayActorError, match="references to the actor"):
        ray.get(held.read.remote(), timeout=60)
    assert _name_released("compat-gc-held")()


@pytest.mark.cluster_only(DROPS_ACTORS)
def test_calls_submitted_before_the_last_handle_goes_still_run(ray_module):
    a = Named.options(name="compat-gc-pending").remote(4)
    ref = a.read.remote()
    del a
    gc.collect()
    assert ray.get(ref, timeout=60) == 4


def test_detached_named_actor_outlives_its_handle(ray_module):
    a = Named.options(name="compat-gc-detached", lifetime="detached").remote(5)
    assert ray.get(a.read.remote(), timeout=60) == 5
    del a
    gc.collect()
    again = ray.get_actor("compat-gc-detached")
    assert ray.get(again.read.remote(), timeout=60) == 5
    ray.kill(again)


def test_method_in_an_undefined_concurrency_group_fails_at_creation(ray_module):
    @ray.remote(num_cpus=0, concurrency_groups={"io": 2})
    class Grouped:
        @ray.method(concurrency_group="nope")
        def f(self):
            return 1

    with pytest.raises(AssertionError):
        Grouped.remote()

    @ray.remote(num_cpus=0)
    class Ungrouped:
        @ray.method(concurrency_group="io")
        def f(self):
            return 1

    with pytest.raises(AssertionError):
        Ungrouped.remote()


@pytest.mark.cluster_only("local mode runs calls in the driver")
def test_call_in_an_undefined_concurrency_group_fails(ray_module):
    @ray.remote(num_cpus=0, concurrency_groups={"io": 2})
    class Grouped:
        def f(self):
            return 1

    g = Grouped.remote()
    assert ray.get(g.f.remote(), timeout=60) == 1
    ref = g.f.options(concurrency_group="nope").remote()  # no error at submission
    with pytest.raises(exceptions.RayActorError):
        ray.get(ref, timeout=60)


def test_calls_of_an_actor_whose_constructor_raised_say_so(ray_module):
    @ray.remote(num_cpus=0)
    class Broken:
        def __init__(self):
            raise ValueError("no good")

        def f(self):
            return 1

    b = Broken.remote()
    with pytest.raises(exceptions.ActorDiedError) as info:
        ray.get(b.f.remote(), timeout=60)
    assert info.value.actor_init_failed
    assert "no good" in str(info.value)
