"""ember.util.queue.Queue behaviour, written against the public API only."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue

import pytest

import ember as ray
from ember.util.queue import Empty, Full, Queue


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2)
    yield
    ray.shutdown()


def test_exceptions_subclass_stdlib():
    assert issubclass(Empty, stdlib_queue.Empty)
    assert issubclass(Full, stdlib_queue.Full)


def test_fifo_and_sizes(cluster):
    q = Queue()
    assert q.empty()
    assert not q.full()
    for i in range(5):
        q.put(i)
    assert q.qsize() == q.size() == len(q) == 5
    assert [q.get() for _ in range(5)] == list(range(5))
    assert q.empty()


def test_bounded_nonblocking(cluster):
    q = Queue(maxsize=2)
    q.put_nowait(1)
    q.put(2, block=False)
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait(3)
    assert q.get_nowait() == 1
    assert q.get(block=False) == 2
    with pytest.raises(Empty):
        q.get_nowait()


def test_blocking_timeouts(cluster):
    q = Queue(maxsize=1)
    with pytest.raises(Empty):
        q.get(timeout=0)
    with pytest.raises(Empty):
        q.get(timeout=0.05)
    q.put(1)
    with pytest.raises(Full):
        q.put(2, timeout=0.05)
    with pytest.raises(Full):
        q.put(2, timeout=0)
    assert q.get(timeout=0) == 1


def test_negative_timeout_is_rejected(cluster):
    q = Queue()
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)


def test_batches(cluster):
    q = Queue(maxsize=3)
    q.put_nowait_batch([1, 2])
    with pytest.raises(Full):
        q.put_nowait_batch([3, 4])
    assert q.qsize() == 2  # a rejected batch adds nothing
    with pytest.raises(Empty):
        q.get_nowait_batch(3)
    assert q.get_nowait_batch(2) == [1, 2]
    assert q.get_nowait_batch(0) == []
    with pytest.raises(TypeError):
        q.put_nowait_batch(5)
    with pytest.raises(TypeError):
        q.get_nowait_batch("1")
    with pytest.raises(ValueError, match="nonnegative"):
        q.get_nowait_batch(-1)


def test_async_api(cluster):
    q = Queue(maxsize=1)

    async def run():
        await q.put_async(7)
        with pytest.raises(Full):
            await q.put_async(8, block=False)
        with pytest.raises(Full):
            await q.put_async(8, timeout=0.01)
        assert await q.get_async() == 7
        with pytest.raises(Empty):
            await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.01)

    asyncio.run(run())


@ray.remote(num_cpus=0)
def produce(q, n):
    for i in range(n):
        q.put(i)


@ray.remote(num_cpus=0)
class Consumer:
    def take(self, q, n):
        return [q.get() for _ in range(n)]


def test_handle_passes_to_tasks_and_actors(cluster):
    q = Queue(maxsize=2)  # the producer blocks until the consumer drains
    consumer = Consumer.remote()
    taken = consumer.take.remote(q, 6)
    ray.get(produce.remote(q, 6))
    assert ray.get(taken) == list(range(6))


def test_blocked_get_wakes_on_put(cluster):
    q = Queue()
    consumer = Consumer.remote()
    taken = consumer.take.remote(q, 1)
    q.put("hello")
    assert ray.get(taken) == ["hello"]


def test_actor_options_are_applied(cluster):
    q = Queue(actor_options={"num_cpus": 0, "name": "util-test-queue"})
    q.put(1)
    assert ray.get_actor("util-test-queue") is not None
    q.shutdown()


@pytest.mark.parametrize("force", [False, True])
def test_shutdown(cluster, force):
    q = Queue()
    actor = q.actor
    q.shutdown(force=force)
    assert q.actor is None
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.qsize.remote())
    q.shutdown()  # idempotent
