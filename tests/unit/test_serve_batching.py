"""@serve.batch and @serve.multiplexed in one event loop, without a cluster."""

from __future__ import annotations

import asyncio

import pytest

from ember import serve
from ember.serve.exceptions import ServeConfigError


class Model:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=30)
    async def predict(self, xs: list[int]) -> list[int]:
        self.sizes.append(len(xs))
        return [x + 1 for x in xs]


def test_full_batches_go_out_without_waiting_for_the_timeout():
    async def main():
        m = Model()
        out = await asyncio.gather(*(m.predict(i) for i in range(8)))
        return out, m.sizes

    out, sizes = asyncio.run(asyncio.wait_for(main(), 20))
    assert out == [i + 1 for i in range(8)]
    assert sizes == [4, 4]


def test_partial_batch_goes_out_after_the_timeout():
    @serve.batch(max_batch_size=10, batch_wait_timeout_s=0)
    async def double(xs: list[int]) -> list[int]:
        return [2 * x for x in xs]

    async def main():
        return await asyncio.gather(double(1), double(2))

    assert asyncio.run(asyncio.wait_for(main(), 20)) == [2, 4]


def test_batch_errors_reach_every_caller_and_sizes_are_checked():
    @serve.batch(max_batch_size=2, batch_wait_timeout_s=30)
    async def bad(xs: list[int]) -> list[int]:
        return xs[:1]

    @serve.batch(max_batch_size=2, batch_wait_timeout_s=30)
    async def boom(xs: list[int]) -> list[int]:
        raise ValueError("no")

    async def main():
        a = await asyncio.gather(bad(1), bad(2), return_exceptions=True)
        b = await asyncio.gather(boom(1), boom(2), return_exceptions=True)
        return a, b

    a, b = asyncio.run(asyncio.wait_for(main(), 20))
    assert all(isinstance(e, TypeError) and "batch size" in str(e) for e in a)
    assert all(isinstance(e, ValueError) for e in b)


def test_batch_rejects_sync_functions_and_bad_sizes():
    with pytest.raises(TypeError, match="async def"):

        @serve.batch
        def sync(xs):
            return xs

    with pytest.raises(ServeConfigError):
        serve.batch(max_batch_size=0)


def test_multiplexed_keeps_the_most_recent_models():
    class Host:
        def __init__(self) -> None:
            self.loaded: list[str] = []

        @serve.multiplexed(max_num_models_per_replica=2)
        async def get_model(self, model_id: str) -> str:
            self.loaded.append(model_id)
            return model_id.upper()

    async def main():
        h = Host()
        got = [await h.get_model(m) for m in ["a", "b", "a", "c", "b"]]
        return got, h.loaded

    got, loaded = asyncio.run(asyncio.wait_for(main(), 20))
    assert got == ["A", "B", "A", "C", "B"]
    assert loaded == ["a", "b", "c", "b"]  # "b" was evicted by "c" ("a" was used last)
