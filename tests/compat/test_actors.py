"""Actors: ordering, concurrency, names and namespaces, lifetimes, kill, restarts,
handles, multiple returns, exit_actor and constructor failures."""

from __future__ import annotations

import os

import pytest

import ember as ray
from ember import exceptions


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start
        self.log = []

    def increment(self, by=1):
        self.value += by
        return self.value

    def append(self, item):
        self.log.append(item)
        return len(self.log)

    def get_log(self):
        return self.log

    def read(self):
        return self.value

    def pid(self):
        return os.getpid()

    def crash(self):
        os._exit(1)


def test_actor_state_and_constructor_args(ray_module):
    c = Counter.remote(10)
    assert ray.get(c.increment.remote()) == 11
    assert ray.get(c.increment.remote(by=5)) == 16
    assert ray.get(c.read.remote()) == 16


def test_calls_from_one_caller_run_in_order(ray_module):
    c = Counter.remote()
    refs = [c.append.remote(i) for i in range(200)]
    assert ray.get(refs) == list(range(1, 201))
    assert ray.get(c.get_log.remote()) == list(range(200))


def test_order_kept_when_sync_calls_bursts_and_threads_mix(ray_module):
    import threading

    c = Counter.remote()
    errors = []

    def caller(t):
        try:
            for i in range(60):
                if i % 10 == 0:  # a burst, then single calls waited on one by one
                    ray.get([c.append.remote((t, i, j)) for j in range(5)])
                else:
                    ray.get(c.append.remote((t, i, 0)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors
    log = ray.get(c.get_log.remote())
    assert len(log) == 4 * (54 + 6 * 5)
    for t in range(4):
        mine = [(i, j) for (tt, i, j) in log if tt == t]
        assert mine == sorted(mine)  # each thread's calls ran in its order


def test_seed_counters_program(ray_module):
    counters = [Counter.remote() for _ in range(4)]
    for _ in range(3):
        [c.increment.remote() for c in counters]
    assert ray.get([c.read.remote() for c in counters]) == [3, 3, 3, 3]


@pytest.mark.cluster_only("local mode runs actors in the driver process")
def test_each_actor_has_its_own_process(ray_module):
    a, b = Counter.remote(), Counter.remote()
    pid_a, pid_b = ray.get([a.pid.remote(), b.pid.remote()])
    assert pid_a != pid_b
    assert pid_a != os.getpid()
    assert ray.get(a.pid.remote()) == pid_a


def test_instantiating_actor_class_directly_raises(ray_module):
    with pytest.raises(TypeError):
        Counter()


def test_actor_options(ray_module):
    @ray.remote
    class Res:
        def assigned(self):
            return ray.get_runtime_context().get_assigned_resources()

    a = Res.options(num_cpus=1, resources={"custom": 1}).remote()
    assert ray.get(a.assigned.remote()) == {"CPU": 1.0, "custom": 1.0}
    ray.kill(a)


@pytest.mark.cluster_only("local mode runs calls one at a time, so they never overlap")
def test_threaded_actor_calls_overlap(ray_module, signal_cls, wait_for):
    signal = signal_cls.remote()

    @ray.remote(max_concurrency=2)
    class Threaded:
        def block(self, sig):
            ray.get(sig.wait.remote())
            return "released"

    t = Threaded.remote()
    refs = [t.block.remote(signal), t.block.remote(signal)]
    # Both calls are inside the method at the same time.
    wait_for(
        lambda: ray.get(signal.num_waiting.remote()) == 2, message="2 calls overlap"
    )
    ray.get(signal.send.remote())
    assert ray.get(refs, timeout=60) == ["released", "released"]


@pytest.mark.cluster_only("local mode runs calls one at a time, so they never overlap")
def test_async_actor_methods_run_concurrently(ray_module, signal_cls, wait_for):
    signal = signal_cls.remote()

    @ray.remote
    class AsyncActor:
        def __init__(self):
            self.inside = 0
            self.max_inside = 0

        async def block(self, sig):
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
            await sig.wait.remote()
            self.inside -= 1
            return self.max_inside

        async def peak(self):
            return self.max_inside

    a = AsyncActor.remote()
    refs = [a.block.remote(signal) for _ in range(5)]
    wait_for(lambda: ray.get(a.peak.remote()) == 5, message="5 async calls inside")
    ray.get(signal.send.remote())
    assert ray.get(refs, timeout=60) == [5] * 5


@pytest.mark.cluster_only("local mode runs calls one at a time, so they never overlap")
def test_async_actor_max_concurrency_limits(ray_module, signal_cls, wait_for):
    signal = signal_cls.remote()

    @ray.remote(max_concurrency=2)
    class Limited:
        async def block(self, sig):
            await sig.wait.remote()
            return 1

    a = Limited.remote()
    refs = [a.block.remote(signal) for _ in range(4)]
    wait_for(lambda: ray.get(signal.num_waiting.remote()) == 2, message="2 running")
    ready, _ = ray.wait(refs, num_returns=1, timeout=0.3)
    assert ready == []
    assert ray.get(signal.num_waiting.remote()) == 2
    ray.get(signal.send.remote())
    assert ray.get(refs, timeout=60) == [1, 1, 1, 1]


def test_named_actor_get_actor(ray_module):
    c = Counter.options(name="compat-named-counter").remote()
    ray.get(c.increment.remote())
    same = ray.get_actor("compat-named-counter")
    assert ray.get(same.increment.remote()) == 2
    ray.kill(c)


def test_get_actor_missing_raises_value_error(ray_module):
    with pytest.raises(ValueError):
        ray.get_actor("compat-no-such-actor")


def test_duplicate_actor_name_raises_value_error(ray_module):
    c = Counter.options(name="compat-dup").remote()
    ray.get(c.read.remote())
    with pytest.raises(ValueError):
        Counter.options(name="compat-dup").remote()
    ray.kill(c)


def test_get_if_exists(ray_module):
    a = Counter.options(name="compat-singleton", get_if_exists=True).remote(5)
    ray.get(a.increment.remote())
    b = Counter.options(name="compat-singleton", get_if_exists=True).remote(100)
    # b is the same actor: constructor args of the second call are ignored.
    assert ray.get(b.read.remote()) == 6
    ray.kill(a)


def test_actor_namespaces(ray_module):
    a = Counter.options(name="compat-shared-name", namespace="ns-one").remote(1)
    b = Counter.options(name="compat-shared-name", namespace="ns-two").remote(2)
    assert (
        ray.get(ray.get_actor("compat-shared-name", namespace="ns-one").read.remote())
        == 1
    )
    assert (
        ray.get(ray.get_actor("compat-shared-name", namespace="ns-two").read.remote())
        == 2
    )
    # Not visible from the driver's own (anonymous) namespace.
    with pytest.raises(ValueError):
        ray.get_actor("compat-shared-name")
    ray.kill(a)
    ray.kill(b)


def test_named_actor_visible_from_task(ray_module):
    c = Counter.options(name="compat-from-task").remote()

    @ray.remote
    def bump():
        return ray.get(ray.get_actor("compat-from-task").increment.remote())

    assert ray.get(bump.remote()) == 1
    ray.kill(c)


def test_detached_actor(ray_module, wait_for):
    d = Counter.options(name="compat-detached", lifetime="detached").remote()
    assert ray.get(d.increment.remote()) == 1
    assert "compat-detached" in [a["name"] for a in ray.util.list_named_actors(True)]
    again = ray.get_actor("compat-detached")
    assert ray.get(again.increment.remote()) == 2
    ray.kill(d)

    def gone():
        try:
            ray.get_actor("compat-detached")
            return False
        except ValueError:
            return True

    wait_for(gone, message="killed detached actor's name is released")


def test_kill_actor_then_calls_fail(ray_module, wait_for):
    c = Counter.remote()
    assert ray.get(c.increment.remote()) == 1
    ray.kill(c)
    # kill() is asynchronous: a call sent right after it may still be served,
    # but soon every call fails.

    def dead():
        try:
            ray.get(c.increment.remote(), timeout=30)
            return False
        except exceptions.RayActorError:
            return True

    wait_for(dead, timeout=60, message="killed actor refuses calls")
    # ActorDiedError is the specific subclass.
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(c.read.remote(), timeout=60)


@pytest.mark.cluster_only("os._exit in an actor would end the driver in local mode")
def test_crash_without_restarts_is_actor_died(ray_module):
    c = Counter.remote()
    ray.get(c.increment.remote())
    with pytest.raises(exceptions.RayActorError):
        ray.get(c.crash.remote(), timeout=60)
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(c.read.remote(), timeout=60)


@pytest.mark.cluster_only("os._exit in an actor would end the driver in local mode")
def test_max_restarts_restarts_with_fresh_state(ray_module, wait_for):
    c = Counter.options(max_restarts=1).remote(0)
    assert ray.get(c.increment.remote()) == 1
    first_pid = ray.get(c.pid.remote())
    with pytest.raises(exceptions.RayActorError):
        ray.get(c.crash.remote(), timeout=60)

    def restarted():
        return ray.get(c.read.remote(), timeout=30) == 0

    wait_for(restarted, timeout=60, message="actor restarted with state reset")
    assert ray.get(c.pid.remote()) != first_pid
    assert ray.get(c.increment.remote()) == 1

    # Restarts used up: the next crash is final.
    with pytest.raises(exceptions.RayActorError):
        ray.get(c.crash.remote(), timeout=60)

    def dead():
        try:
            ray.get(c.read.remote(), timeout=30)
            return False
        except exceptions.ActorDiedError:
            return True

    wait_for(dead, timeout=60, message="actor dead after its restarts ran out")


@pytest.mark.cluster_only("os._exit in an actor would end the driver in local mode")
def test_max_task_retries_reruns_call_after_restart(ray_module, tmp_path):
    path = str(tmp_path / "attempts")

    @ray.remote(max_restarts=1, max_task_retries=1)
    class Fragile:
        def work(self, p):
            with open(p, "a") as f:
                f.write("x\n")
            with open(p) as f:
                n = sum(1 for _ in f)
            if n == 1:
                os._exit(1)
            return n

    a = Fragile.remote()
    assert ray.get(a.work.remote(path), timeout=60) == 2


def test_handles_passed_to_tasks_and_actors(ray_module):
    c = Counter.remote()

    @ray.remote
    def bump(handle, n):
        return ray.get([handle.increment.remote() for _ in range(n)])[-1]

    @ray.remote
    class Driver:
        def __init__(self, handle):
            self.handle = handle

        def bump(self):
            return ray.get(self.handle.increment.remote(10))

    assert ray.get(bump.remote(c, 3)) == 3
    d = Driver.remote(c)
    assert ray.get(d.bump.remote()) == 13
    # A handle inside a container works too.
    assert ray.get(bump.remote([c][0], 1)) == 14
    assert ray.get(c.read.remote()) == 14


def test_actor_handle_in_list_argument(ray_module):
    c = Counter.remote()

    @ray.remote
    def bump_all(handles):
        return ray.get([h.increment.remote() for h in handles])

    assert ray.get(bump_all.remote([c, c])) == [1, 2]


def test_method_num_returns(ray_module):
    @ray.remote
    class Splitter:
        @ray.method(num_returns=2)
        def split(self, x):
            return x, -x

        def whole(self, x):
            return x, -x

    s = Splitter.remote()
    pos, neg = s.split.remote(3)
    assert ray.get(pos) == 3
    assert ray.get(neg) == -3
    assert ray.get(s.whole.remote(3)) == (3, -3)


def test_exit_actor(ray_module, wait_for):
    @ray.remote
    class Quitter:
        def ping(self):
            return "pong"

        def quit(self):
            ray.actor.exit_actor()

    q = Quitter.remote()
    assert ray.get(q.ping.remote()) == "pong"
    q.quit.remote()

    def dead():
        try:
            ray.get(q.ping.remote(), timeout=30)
            return False
        except exceptions.RayActorError:
            return True

    wait_for(dead, timeout=60, message="actor exited")


def test_exit_actor_is_not_restarted(ray_module):
    @ray.remote(max_restarts=2)
    class Quitter:
        def quit(self):
            ray.actor.exit_actor()

        def ping(self):
            return "pong"

    q = Quitter.remote()
    assert ray.get(q.ping.remote()) == "pong"
    with pytest.raises(exceptions.RayActorError):
        ray.get(q.quit.remote(), timeout=60)
    with pytest.raises(exceptions.ActorDiedError):
        ray.get(q.ping.remote(), timeout=60)


def test_constructor_failure(ray_module):
    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("ctor exploded")

        def ping(self):
            return "pong"

    b = Broken.remote()
    with pytest.raises(exceptions.RayActorError) as info:
        ray.get(b.ping.remote(), timeout=60)
    assert isinstance(info.value, exceptions.ActorDiedError)
    assert "ctor exploded" in str(info.value)


def test_actor_method_exception_keeps_actor_alive(ray_module):
    @ray.remote
    class Moody:
        def __init__(self):
            self.calls = 0

        def fail(self):
            self.calls += 1
            raise KeyError("bad key")

        def count(self):
            return self.calls

    m = Moody.remote()
    with pytest.raises(KeyError):
        ray.get(m.fail.remote())
    assert ray.get(m.count.remote()) == 1


@pytest.mark.cluster_only(
    "a blocked call blocks the driver in local mode (nothing runs beside it)"
)
def test_kill_interrupts_running_call(ray_module, signal_cls, wait_for):
    never = signal_cls.remote()

    @ray.remote
    class Stuck:
        def block(self, sig):
            ray.get(sig.wait.remote())

    s = Stuck.remote()
    ref = s.block.remote(never)
    wait_for(lambda: ray.get(never.num_waiting.remote()) == 1, message="call running")
    ray.kill(s)
    with pytest.raises(exceptions.RayActorError):
        ray.get(ref, timeout=60)


def test_actor_handle_method_not_callable_directly(ray_module):
    c = Counter.remote()
    with pytest.raises(TypeError):
        c.increment()
