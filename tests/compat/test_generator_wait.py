"""``ray.wait``, ``ray.get`` and ``ray.cancel`` given an ObjectRefGenerator.

A generator in ``wait`` is ready when ``next(gen)`` would return at once: its next
item has arrived, or the task has ended (``next`` then raises StopIteration). It is
listed in ``ready``/``not_ready`` as the generator object itself.
"""

from __future__ import annotations

import pytest

import ember as ray


@ray.remote
def produce(n):
    for i in range(n):
        yield i * 10


def test_wait_on_a_generator_until_it_ends(ray_module):
    gen = produce.remote(3)
    received = []
    while True:
        ready, not_ready = ray.wait([gen], timeout=60)
        assert ready == [gen]
        assert not_ready == []
        try:
            ref = next(gen)
        except StopIteration:
            break
        received.append(ray.get(ref))
    assert received == [0, 10, 20]
    # an ended generator stays ready
    assert ray.wait([gen], timeout=0) == ([gen], [])


def test_wait_consumes_several_generators_as_items_arrive(ray_module):
    gens = [produce.remote(2) for _ in range(3)]
    pending = list(gens)
    items = []
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=60)
        assert len(ready) == 1
        gen = ready[0]
        assert any(gen is g for g in gens)
        try:
            items.append(ray.get(next(gen)))
            pending.append(gen)
        except StopIteration:
            pass
    assert sorted(items) == [0, 0, 0, 10, 10, 10]


def test_wait_on_a_generator_that_raised(ray_module):
    @ray.remote
    def fails_after_one():
        yield 1
        raise ValueError("no more")

    gen = fails_after_one.remote()
    assert ray.wait([gen], timeout=60)[0] == [gen]
    assert ray.get(next(gen)) == 1
    assert ray.wait([gen], timeout=60)[0] == [gen]  # the error is the next item
    with pytest.raises(ValueError, match="no more"):
        ray.get(next(gen))
    assert ray.wait([gen], timeout=60)[0] == [gen]
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.cluster_only("a generator blocked mid-stream needs a running task")
def test_blocked_generator_is_not_ready_until_its_next_item(ray_module, signal_cls):
    signal = signal_cls.remote()

    @ray.remote
    def first_then_wait(sig):
        yield "first"
        ray.get(sig.wait.remote())
        yield "second"

    gen = first_then_wait.remote(signal)
    assert ray.wait([gen], timeout=60) == ([gen], [])
    first = next(gen)
    assert ray.get(first) == "first"
    # the next item is not produced yet: not ready, and a plain ref beside it is
    assert ray.wait([gen], timeout=0.2) == ([], [gen])
    ready, not_ready = ray.wait([gen, first], num_returns=1, timeout=10)
    assert ready == [first]
    assert not_ready == [gen]
    ray.get(signal.send.remote())
    assert ray.wait([gen], timeout=60) == ([gen], [])
    assert ray.get(next(gen)) == "second"
    assert ray.wait([gen], timeout=60) == ([gen], [])
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.cluster_only("an actor's generator streams while the caller waits")
def test_wait_on_an_actor_method_generator(ray_module):
    @ray.remote
    class Source:
        def items(self, n):
            for i in range(n):  # noqa: UP028 (Ray sends into the generator)
                yield i

    source = Source.remote()
    gen = source.items.remote(2)
    got = []
    while ray.wait([gen], timeout=60)[0]:
        try:
            got.append(ray.get(next(gen)))
        except StopIteration:
            break
    assert got == [0, 1]


def test_get_of_a_generator_returns_the_generator(ray_module):
    gen = produce.remote(2)
    assert ray.get(gen) is gen
    assert [ray.get(r) for r in gen] == [0, 10]


@pytest.mark.cluster_only("cancels a running task")
def test_cancel_accepts_a_generator(ray_module, signal_cls):
    signal = signal_cls.remote()

    @ray.remote
    def endless(sig):
        yield 0
        ray.get(sig.wait.remote())
        yield 1

    gen = endless.remote(signal)
    assert ray.get(next(gen), timeout=60) == 0
    ray.cancel(gen)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(gen.completed(), timeout=60)
    # the stream ends with one item that holds the cancellation
    cancelled = []
    for ref in gen:
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(ref, timeout=60)
        cancelled.append(ref)
    assert len(cancelled) == 1
