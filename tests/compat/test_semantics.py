"""Task and actor semantics that programs rely on: how actors end (crash or intended
exit), restarts, ``max_calls``, generators with ``num_returns``, async actors and
their event loop, concurrency groups, and ``_system_config``."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

import ember as ray
from ember import exceptions

IS_EMBER = ray.__name__ == "ember"

# -- how an actor ends: a crash (restarted) or an intended exit (not) ---------------


@ray.remote(max_restarts=1)
class Phoenix:
    def pid(self):
        return os.getpid()

    def reconstructed(self):
        return ray.get_runtime_context().was_current_actor_reconstructed

    def exit_zero(self):
        os._exit(0)

    def system_exit(self):
        sys.exit(0)

    def leave(self):
        ray.actor.exit_actor()


@pytest.mark.cluster_only("os._exit in an actor would end the driver in local mode")
def test_process_exit_with_code_zero_is_a_crash_and_the_actor_restarts(ray_module):
    a = Phoenix.remote()
    first = ray.get(a.pid.remote())
    assert ray.get(a.reconstructed.remote()) is False
    with pytest.raises(exceptions.RayActorError):
        ray.get(a.exit_zero.remote())
    assert ray.get(a.pid.remote()) != first
    assert ray.get(a.reconstructed.remote()) is True


@pytest.mark.cluster_only("os._exit in an actor would end the driver in local mode")
def test_call_that_ended_the_process_is_retried_on_the_restarted_actor(ray_module):
    @ray.remote(max_restarts=1, max_task_retries=1)
    class Flaky:
        def go(self):
            if not ray.get_runtime_context().was_current_actor_reconstructed:
                os._exit(0)
            return "retried"

    assert ray.get(Flaky.remote().go.remote()) == "retried"


@pytest.mark.cluster_only("the actor's process ends")
def test_system_exit_in_a_method_is_an_intended_exit(ray_module):
    a = Phoenix.remote()
    ray.get(a.pid.remote())
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(a.system_exit.remote())
    with pytest.raises(exceptions.ActorDiedError):  # not restarted
        ray.get(a.pid.remote())


@pytest.mark.cluster_only("the actor's process ends")
def test_exit_actor_is_not_restarted_despite_max_restarts(ray_module):
    a = Phoenix.remote()
    ray.get(a.pid.remote())
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(a.leave.remote())
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(a.pid.remote())


@pytest.mark.cluster_only("restarts a process")
def test_actor_killed_for_restart_knows_it_was_reconstructed(ray_module, wait_for):
    a = Phoenix.remote()
    first = ray.get(a.pid.remote())
    ray.kill(a, no_restart=False)

    def restarted():
        try:
            return ray.get(a.pid.remote()) != first
        except exceptions.RayActorError:
            return False

    wait_for(restarted, message="the actor restarts")
    assert ray.get(a.reconstructed.remote()) is True


# -- max_calls: a task's worker process is replaced after that many runs ------------


@pytest.mark.cluster_only("needs worker processes")
def test_max_calls_replaces_the_worker_process(ray_module):
    @ray.remote(max_calls=1)
    def pid():
        return os.getpid()

    pids = [ray.get(pid.remote()) for _ in range(3)]
    assert len(set(pids)) == 3


@pytest.mark.cluster_only("needs worker processes")
def test_max_calls_two_reuses_each_process_at_most_twice(ray_module):
    @ray.remote(max_calls=2)
    def pid():
        return os.getpid()

    pids = [ray.get(pid.remote()) for _ in range(6)]
    assert max(pids.count(p) for p in pids) <= 2
    assert len(set(pids)) >= 3


# -- _system_config: keys ember has no use for do not stop a program ----------------


def test_system_config_with_keys_of_ray_internals_still_starts(shutdown_only):
    config = {"automatic_object_spilling_enabled": False, "max_io_workers": 2}
    if IS_EMBER:
        with pytest.warns(UserWarning, match="automatic_object_spilling_enabled"):
            ray.init(num_cpus=1, _system_config=config)
    else:
        ray.init(num_cpus=1, _system_config=config)

    @ray.remote
    def one():
        return 1

    assert ray.get(one.remote()) == 1


# -- async actors: async __init__, async generators, the event loop; built-in methods


@ray.remote
class AsyncBuilt:
    async def __init__(self, x):
        await asyncio.sleep(0)
        self.x = x
        self.loop = id(asyncio.get_running_loop())

    async def get(self):
        return self.x, self.loop == id(asyncio.get_running_loop())

    async def count(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def count_then_fail(self, n):
        for i in range(n):
            yield i
        raise ValueError("stream broke")


@pytest.mark.cluster_only("the actor's event loop runs in its own process")
def test_async_init_runs_on_the_actors_event_loop(ray_module):
    a = AsyncBuilt.remote(5)
    assert ray.get(a.get.remote()) == (5, True)


@pytest.mark.cluster_only("streams from an actor's event loop")
def test_async_generator_method_streams_its_items(ray_module):
    a = AsyncBuilt.remote(0)
    gen = a.count.remote(4)
    assert isinstance(gen, ray.ObjectRefGenerator)
    assert [ray.get(r) for r in gen] == [0, 1, 2, 3]
    refs = list(a.count_then_fail.remote(2))
    assert ray.get(refs[:2]) == [0, 1]
    with pytest.raises(ValueError, match="stream broke"):
        ray.get(refs[2])


@pytest.mark.cluster_only("the actor's process ends")
def test_every_actor_has_ray_ready_and_ray_terminate(ray_module):
    a = Phoenix.remote()
    b = AsyncBuilt.remote(1)
    assert ray.get([a.__ray_ready__.remote(), b.__ray_ready__.remote()]) == [True, True]
    a.__ray_terminate__.remote()
    with pytest.raises(exceptions.ActorDiedError):  # an intended exit: no restart
        ray.get(a.pid.remote())


@pytest.mark.cluster_only("calls overlap on the actor's event loop")
def test_coroutines_woken_by_an_event_resume_before_later_calls_start(ray_module):
    # A batching program: every call of a batch must see that batch's result, so
    # the calls woken by set() must resume before the next batch's calls run.
    @ray.remote
    class Batcher:
        def __init__(self, size):
            self.size = size
            self.batch = []
            self.event = asyncio.Event()
            self.out = None

        async def submit(self, x):
            self.batch.append(x)
            if len(self.batch) == self.size:
                self.out, self.batch = sorted(self.batch), []
                self.event.set()
                self.event.clear()
                return self.out
            await self.event.wait()
            return self.out

    b = Batcher.remote(4)
    out = ray.get([b.submit.remote(i) for i in range(12)], timeout=60)
    for i, batch in enumerate(out):
        assert i in batch, out
        assert len(batch) == 4, out
    assert sorted(x for batch in {tuple(b) for b in out} for x in batch) == list(
        range(12)
    )


# -- generators with num_returns: "dynamic" (one ref to a generator of refs), or N ---


@ray.remote(num_returns="dynamic")
def tens(n):
    for i in range(n):
        yield i * 10


def test_dynamic_returns_give_one_ref_to_a_generator_of_refs(ray_module):
    ref = tens.remote(3)
    assert isinstance(ref, ray.ObjectRef)
    gen = ray.get(ref)
    assert type(gen).__name__ == "DynamicObjectRefGenerator"
    assert len(gen) == 3
    refs = list(gen)
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == [0, 10, 20]
    assert ray.get(list(ray.get(ref))) == [0, 10, 20]  # each get: a fresh generator


def test_dynamic_returns_keep_their_items_alive_without_the_generator(ray_module):
    ref = tens.remote(2)
    refs = list(ray.get(ref))
    del ref
    assert ray.get(refs) == [0, 10]


def test_dynamic_returns_error_is_the_last_item(ray_module):
    @ray.remote(num_returns="dynamic")
    def breaks():
        yield 1
        raise ValueError("boom")

    refs = list(ray.get(breaks.remote()))
    assert len(refs) == 2
    assert ray.get(refs[0]) == 1
    with pytest.raises(ValueError, match="boom"):
        ray.get(refs[1])


def test_dynamic_returns_of_actor_methods_and_options(ray_module):
    @ray.remote
    class Gen:
        @ray.method(num_returns="dynamic")
        def declared(self, n):
            yield from range(n)

        def plain(self, n):
            yield from range(n)

    g = Gen.remote()
    assert ray.get(list(ray.get(g.declared.remote(2)))) == [0, 1]
    dyn = g.plain.options(num_returns="dynamic").remote(3)
    assert ray.get(list(ray.get(dyn))) == [0, 1, 2]
    assert ray.get(list(ray.get(tens.options(num_returns="dynamic").remote(1)))) == [0]


def test_generator_with_static_num_returns_yields_its_returns(ray_module):
    @ray.remote(num_returns=3)
    def three():
        yield from range(3)

    @ray.remote
    class Gen:
        def pair(self):
            yield "a"
            yield "b"

    a, b, c = three.remote()
    assert ray.get([a, b, c]) == [0, 1, 2]
    g = Gen.remote()
    assert ray.get(g.pair.options(num_returns=2).remote()) == ["a", "b"]


# -- concurrency groups: each with its own limit, the default group apart ---------


@pytest.mark.cluster_only("calls overlap")
def test_concurrency_groups_of_a_threaded_actor(ray_module, wait_for):
    import threading

    @ray.remote(concurrency_groups={"io": 2})
    class Threads:
        def __init__(self):
            self.go = threading.Event()
            self.lock = threading.Lock()
            self.inside = 0
            self.most = 0

        @ray.method(concurrency_group="io")
        def held(self):
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            self.go.wait(timeout=60)
            with self.lock:
                self.inside -= 1
            return threading.current_thread().name

        def release(self):  # the default group: not blocked by "io"
            self.go.set()

        def counts(self):
            return self.inside, self.most

    a = Threads.remote()
    held = [a.held.remote() for _ in range(4)]
    wait_for(lambda: ray.get(a.counts.remote()) == (2, 2), message="2 calls in io")
    ready, _ = ray.wait(held, timeout=0)
    assert ready == []
    # a call placed in the group by .options() also waits behind the limit
    extra = a.counts.options(concurrency_group="io").remote()
    ray.get(a.release.remote())
    ray.get([*held, extra])
    assert ray.get(a.counts.remote()) == (0, 2)


@pytest.mark.cluster_only("calls overlap")
def test_concurrency_groups_of_an_async_actor(ray_module, wait_for):
    @ray.remote(concurrency_groups={"io": 2, "health": 1})
    class Loops:
        def __init__(self):
            self.released = False
            self.inside = 0
            self.most = 0

        @ray.method(concurrency_group="io")
        async def held(self):
            self.inside += 1
            self.most = max(self.most, self.inside)
            while not self.released:  # another group's loop sets the flag
                await asyncio.sleep(0.01)
            self.inside -= 1

        @ray.method(concurrency_group="health")
        async def ping(self):
            return "ok"

        async def release(self):
            self.released = True

        async def counts(self):
            return self.inside, self.most

    a = Loops.remote()
    held = [a.held.remote() for _ in range(5)]
    wait_for(lambda: ray.get(a.counts.remote()) == (2, 2), message="2 calls in io")
    assert ray.get(a.ping.remote()) == "ok"
    ray.get(a.release.remote())
    ray.get(held)
    assert ray.get(a.counts.remote()) == (0, 2)


def test_ray_ready_and_ray_terminate_of_a_plain_actor(ray_module):
    @ray.remote
    class Plain:
        def ping(self):
            return "pong"

    a = Plain.remote()
    assert ray.get(a.__ray_ready__.remote()) is True
    assert ray.get(a.ping.remote()) == "pong"
    a.__ray_terminate__.remote()
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(a.ping.remote())
