"""ObjectRefGenerator's methods, ``async for`` from the user's own event loop, and
the typed forms (``ray.ObjectRef[int]``, ``ActorHandle[Cls]``) as Ray 2.60 has them."""

from __future__ import annotations

import asyncio
import pickle
import typing

import pytest

import ember as ray
import ember.actor


@ray.remote
def produce(n):
    for i in range(n):  # noqa: UP028 (Ray sends into the generator: no yield from)
        yield i


@ray.remote
class Streamer:
    def items(self, n):
        for i in range(n):
            yield i * 2

    async def async_items(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 3


def test_next_ready_and_is_finished(ray_module):
    gen = produce.remote(2)
    ray.get(gen.completed(), timeout=60)  # the task has ended: every item is there
    assert gen.next_ready()
    assert not gen.is_finished()
    assert ray.get(next(gen)) == 0
    assert gen.next_ready()
    assert ray.get(next(gen)) == 1
    # every item taken: nothing is next, and the generator is finished
    assert not gen.next_ready()
    assert gen.is_finished()
    with pytest.raises(StopIteration):
        next(gen)
    assert gen.is_finished()


def test_completed_is_ready_when_the_task_ends(ray_module):
    gen = produce.remote(3)
    done = gen.completed()
    assert isinstance(done, ray.ObjectRef)
    ray.get(done, timeout=60)
    assert ray.wait([done], timeout=0)[0] == [done]
    assert [ray.get(r) for r in gen] == [0, 1, 2]


def test_completed_of_a_generator_that_raised(ray_module):
    @ray.remote
    def fails():
        yield "a"
        raise KeyError("gone")

    gen = fails.remote()
    ray.wait([gen.completed()], timeout=60)
    refs = list(gen)
    assert len(refs) == 2
    assert ray.get(refs[0]) == "a"
    with pytest.raises(KeyError):
        ray.get(refs[1])
    assert gen.is_finished()


@pytest.mark.parametrize("name", ["send", "throw"])
def test_send_and_throw_are_not_supported(ray_module, name):
    gen = produce.remote(1)
    with pytest.raises(NotImplementedError):
        getattr(gen, name)(None)
    assert [ray.get(r) for r in gen] == [0]  # the generator still works


def test_close_is_not_supported(ray_module):
    gen = produce.remote(2)
    with pytest.raises(NotImplementedError):
        gen.close()
    assert [ray.get(r) for r in gen] == [0, 1]


def test_async_send_throw_close_are_not_supported(ray_module):
    gen = produce.remote(1)

    async def main():
        for call in (gen.asend(None), gen.athrow(None), gen.aclose()):
            with pytest.raises(NotImplementedError):
                await call

    asyncio.run(main())
    assert [ray.get(r) for r in gen] == [0]


def test_a_generator_cannot_be_pickled_or_passed_to_a_task(ray_module):
    @ray.remote
    def take(g):
        return g

    gen = produce.remote(1)
    with pytest.raises(TypeError):
        pickle.dumps(gen)
    with pytest.raises(TypeError):
        take.remote(gen)
    assert [ray.get(r) for r in gen] == [0]


def test_async_for_over_a_task_generator_in_asyncio_run(ray_module):
    async def main():
        out = []
        async for ref in produce.remote(4):
            out.append(await ref)
        return out

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_async_for_over_an_actor_generator_in_asyncio_run(ray_module):
    streamer = Streamer.remote()

    async def main():
        sync_items = [await ref async for ref in streamer.items.remote(3)]
        async_items = [await ref async for ref in streamer.async_items.remote(3)]
        return sync_items, async_items

    assert asyncio.run(main()) == ([0, 2, 4], [0, 3, 6])


def test_async_for_generators_side_by_side_in_asyncio_run(ray_module):
    async def drain(gen):
        return [await ref async for ref in gen]

    async def main():
        return await asyncio.gather(*(drain(produce.remote(n)) for n in (1, 2, 3)))

    assert asyncio.run(main()) == [[0], [0, 1], [0, 1, 2]]


@pytest.mark.cluster_only("an item arrives while the user's loop waits for it")
def test_async_for_waits_for_items_on_the_users_loop(ray_module, signal_cls):
    signal = signal_cls.remote()

    @ray.remote
    def gated(sig):
        yield "before"
        ray.get(sig.wait.remote())
        yield "after"

    async def main():
        gen = gated.remote(signal)
        first = await (await gen.__anext__())
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:  # the loop stays free while the next item is awaited
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        pending = asyncio.ensure_future(gen.__anext__())
        while ticks < 5:
            await asyncio.sleep(0.01)
        assert not pending.done()
        await signal.send.remote()
        second = await (await asyncio.wait_for(pending, 60))
        ticker.cancel()
        with pytest.raises(StopAsyncIteration):
            await gen.__anext__()
        return first, second

    assert asyncio.run(main()) == ("before", "after")


def test_await_a_ref_in_asyncio_run(ray_module):
    @ray.remote
    def double(x):
        return 2 * x

    async def main():
        return await double.remote(21), await ray.put("x")

    assert asyncio.run(main()) == (42, "x")


def test_typed_refs_and_handles_subscript():
    def f(ref: ray.ObjectRef[int], handle: ember.actor.ActorHandle[Counter]) -> None:
        pass

    class Counter:
        pass

    hints = typing.get_type_hints(f, localns={"ray": ray, "Counter": Counter})
    assert typing.get_origin(hints["ref"]) is ray.ObjectRef
    assert typing.get_args(hints["ref"]) == (int,)
    assert typing.get_origin(hints["handle"]) is ember.actor.ActorHandle
    assert typing.get_args(hints["handle"]) == (Counter,)
    assert typing.get_args(ember.actor.ActorClass[Counter]) == (Counter,)
    # what ActorClass[T].remote() returns
    assert type[Counter] in typing.get_args(ember.actor.ActorProxy[Counter])


def test_a_generator_type_is_not_subscriptable():
    # Ray 2.60's ObjectRefGenerator is not generic: annotate with a string (or
    # ``from __future__ import annotations``) to write ObjectRefGenerator[int].
    with pytest.raises(TypeError):
        ray.ObjectRefGenerator[int]


@pytest.mark.cluster_only("the worker process dies")
def test_a_crashed_generator_ends_with_its_completed_ref(ray_module):
    @ray.remote(max_retries=0)
    def dies_after_one():
        import os

        yield 1
        os._exit(1)

    gen = dies_after_one.remote()
    refs = list(gen)
    assert len(refs) == 2
    assert ray.get(refs[0]) == 1
    # the stream's last item is the completed ref, which holds the failure
    assert refs[1] == gen.completed()
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(refs[1], timeout=60)
    assert gen.is_finished()
