"""ember.util: ActorPool, queue.Queue, multiprocessing.Pool, list_named_actors."""

from __future__ import annotations

import pytest

import ember as ray
from ember.util import ActorPool
from ember.util.multiprocessing import Pool
from ember.util.queue import Empty, Full, Queue


@ray.remote
class Doubler:
    def double(self, x):
        return 2 * x


def test_actor_pool_map(ray_module):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    out = list(pool.map(lambda actor, v: actor.double.remote(v), range(10)))
    assert out == [2 * i for i in range(10)]


def test_actor_pool_map_unordered(ray_module):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    out = list(pool.map_unordered(lambda actor, v: actor.double.remote(v), range(10)))
    assert sorted(out) == [2 * i for i in range(10)]


def test_actor_pool_submit_get_next(ray_module):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert not pool.has_next()
    for i in range(5):
        pool.submit(lambda actor, v: actor.double.remote(v), i)
    assert pool.has_next()
    results = []
    while pool.has_next():
        results.append(pool.get_next())
    assert results == [0, 2, 4, 6, 8]
    assert not pool.has_next()


def test_actor_pool_get_next_unordered_and_idle(ray_module):
    pool = ActorPool([Doubler.remote()])
    pool.submit(lambda actor, v: actor.double.remote(v), 21)
    pool.submit(lambda actor, v: actor.double.remote(v), 4)
    got = {pool.get_next_unordered(timeout=60), pool.get_next_unordered(timeout=60)}
    assert got == {42, 8}
    assert pool.has_free()


def test_queue_put_get(ray_module):
    q = Queue()
    assert q.empty()
    assert q.size() == 0
    for i in range(3):
        q.put(i)
    assert not q.empty()
    assert q.size() == 3
    assert len(q) == 3
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    assert q.empty()


def test_queue_maxsize_and_full(ray_module):
    q = Queue(maxsize=2)
    q.put("a")
    q.put("b")
    assert q.full()
    with pytest.raises(Full):
        q.put("c", block=False)
    with pytest.raises(Full):
        q.put("c", timeout=0.2)
    with pytest.raises(Full):
        q.put_nowait("c")
    assert q.get() == "a"
    assert not q.full()


def test_queue_empty_exceptions(ray_module):
    q = Queue()
    with pytest.raises(Empty):
        q.get(block=False)
    with pytest.raises(Empty):
        q.get(timeout=0.2)
    with pytest.raises(Empty):
        q.get_nowait()


def test_queue_batch_operations(ray_module):
    q = Queue()
    q.put_nowait_batch([1, 2, 3, 4])
    assert q.get_nowait_batch(3) == [1, 2, 3]
    assert q.qsize() == 1


@pytest.mark.cluster_only(
    "the consumer blocks the driver in local mode before the producer runs"
)
def test_queue_shared_with_tasks_and_actors(ray_module):
    q = Queue()

    @ray.remote
    def producer(queue, n):
        for i in range(n):
            queue.put(i)
        return n

    @ray.remote
    class Consumer:
        def take(self, queue, n):
            return [queue.get(timeout=60) for _ in range(n)]

    consumer = Consumer.remote()
    taken = consumer.take.remote(q, 5)
    assert ray.get(producer.remote(q, 5)) == 5
    assert ray.get(taken, timeout=60) == [0, 1, 2, 3, 4]


@pytest.mark.cluster_only("in local mode the blocked get runs before the put")
def test_queue_blocking_get_waits_for_put(ray_module):
    q = Queue()

    @ray.remote
    def take(queue):
        return queue.get(timeout=60)

    ref = take.remote(q)
    ready, _ = ray.wait([ref], timeout=0.3)
    assert ready == []
    q.put("late item")
    assert ray.get(ref, timeout=60) == "late item"


@pytest.fixture
def fns():
    """Plain functions for the Pool tests, made inside the fixture so that they are
    shipped by value (test modules are not importable on workers)."""

    def square(x):
        return x * x

    def add(a, b):
        return a + b

    return square, add


def test_multiprocessing_pool_map(ray_module, fns):
    _square, _add = fns
    with Pool(processes=2) as pool:
        assert pool.map(_square, range(10)) == [i * i for i in range(10)]


def test_multiprocessing_pool_imap(ray_module, fns):
    _square, _add = fns
    with Pool(processes=2) as pool:
        assert list(pool.imap(_square, range(6))) == [0, 1, 4, 9, 16, 25]
        assert sorted(pool.imap_unordered(_square, range(6))) == [0, 1, 4, 9, 16, 25]


def test_multiprocessing_pool_apply_and_starmap(ray_module, fns):
    _square, _add = fns
    pool = Pool(processes=2)
    try:
        res = pool.apply_async(_add, (2, 3))
        assert res.get(timeout=60) == 5
        assert pool.apply(_add, (4, 5)) == 9
        assert pool.starmap(_add, [(1, 2), (3, 4)]) == [3, 7]
        async_map = pool.map_async(_square, [1, 2, 3])
        assert async_map.get(timeout=60) == [1, 4, 9]
    finally:
        pool.close()
        pool.join()


def test_multiprocessing_pool_propagates_errors(ray_module):
    def fail(x):
        raise ValueError(f"bad {x}")

    with Pool(processes=1) as pool, pytest.raises(ValueError):
        pool.map(fail, [1])


def test_list_named_actors(ray_module):
    a = Doubler.options(name="compat-list-a").remote()
    b = Doubler.options(name="compat-list-b", namespace="compat-other").remote()
    ray.get([a.double.remote(1), b.double.remote(1)])
    names = ray.util.list_named_actors()
    assert "compat-list-a" in names
    assert "compat-list-b" not in names
    everywhere = ray.util.list_named_actors(all_namespaces=True)
    assert {"name": "compat-list-b", "namespace": "compat-other"} in everywhere
    assert {
        "name": "compat-list-a",
        "namespace": ray.get_runtime_context().namespace,
    } in everywhere
    ray.kill(a)
    ray.kill(b)
