"""ActorPool behaviour, written against the public API only."""

from __future__ import annotations

import pytest

import ember as ray
from ember.util import ActorPool


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2)
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
class Doubler:
    def double(self, v):
        return 2 * v

    def fail(self, v):
        raise ValueError(f"bad {v}")


@ray.remote(num_cpus=0)
class Gate:
    """Holds calls until opened; lets tests order events without sleeping."""

    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()

    async def open(self):
        self.event.set()


@ray.remote(num_cpus=0)
class Waiter:
    def echo_after(self, gate, v):
        ray.get(gate.wait.remote())
        return v


def double(a, v):
    return a.double.remote(v)


def test_map_preserves_order(cluster):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert list(pool.map(double, range(10))) == [2 * v for v in range(10)]
    assert not pool.has_next()


def test_map_unordered_returns_all(cluster):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert sorted(pool.map_unordered(double, range(10))) == [2 * v for v in range(10)]


def test_submit_get_next_and_queueing(cluster):
    actor = Doubler.remote()
    pool = ActorPool([actor])
    assert pool.has_free()
    pool.submit(double, 1)
    pool.submit(double, 2)  # queued: the only actor is busy
    assert not pool.has_free()
    assert pool.pop_idle() is None
    assert pool.has_next()
    assert pool.get_next() == 2
    assert pool.get_next() == 4
    assert not pool.has_next()
    assert pool.has_free()
    assert pool.pop_idle() == actor
    assert not pool.has_free()


def test_get_next_when_empty_raises_stop_iteration(cluster):
    pool = ActorPool([Doubler.remote()])
    with pytest.raises(StopIteration):
        pool.get_next()
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_get_next_unordered_then_get_next_is_rejected(cluster):
    pool = ActorPool([Doubler.remote()])
    pool.submit(double, 1)
    assert pool.get_next_unordered() == 2
    pool.submit(double, 2)
    assert pool.get_next() == 4  # indices caught up, ordered get is allowed


def test_get_next_timeout_keeps_task(cluster):
    gate = Gate.remote()
    pool = ActorPool([Waiter.remote()])
    pool.submit(lambda a, v: a.echo_after.remote(gate, v), "x")
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0)
    assert pool.has_next()
    ray.get(gate.open.remote())
    assert pool.get_next() == "x"


def test_get_next_timeout_ignore_drops_task(cluster):
    gate = Gate.remote()
    pool = ActorPool([Waiter.remote()])
    pool.submit(lambda a, v: a.echo_after.remote(gate, v), "x")
    with pytest.raises(TimeoutError, match="ignored"):
        pool.get_next(timeout=0, ignore_if_timedout=True)
    assert not pool.has_next()
    assert pool.has_free()
    ray.get(gate.open.remote())


def test_get_next_unordered_timeout(cluster):
    gate = Gate.remote()
    pool = ActorPool([Waiter.remote()])
    pool.submit(lambda a, v: a.echo_after.remote(gate, v), "y")
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0)
    assert pool.has_next()
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0, ignore_if_timedout=True)
    assert not pool.has_next()
    ray.get(gate.open.remote())


def test_task_error_propagates_and_actor_returns(cluster):
    pool = ActorPool([Doubler.remote()])
    pool.submit(lambda a, v: a.fail.remote(v), 1)
    with pytest.raises(ValueError, match="bad 1"):
        pool.get_next()
    assert pool.has_free()


def test_dead_actor_is_dropped(cluster):
    actor = Doubler.remote()
    pool = ActorPool([actor])
    ray.kill(actor)
    pool.submit(double, 1)
    with pytest.raises(ray.exceptions.RayActorError):
        pool.get_next()
    assert not pool.has_free()


def test_push_adds_actor_and_runs_pending(cluster):
    pool = ActorPool([])
    pool.submit(double, 3)
    assert not pool.has_next()  # nothing can run yet
    newcomer = Doubler.remote()
    pool.push(newcomer)
    assert pool.get_next() == 6
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(newcomer)


def test_map_discards_previous_results(cluster):
    pool = ActorPool([Doubler.remote()])
    pool.submit(double, 100)
    assert list(pool.map(double, [1, 2])) == [2, 4]
