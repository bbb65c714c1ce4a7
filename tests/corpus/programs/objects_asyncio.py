import asyncio

import ray

ray.init(num_cpus=2)


@ray.remote
def compute(x):
    return x + 100


async def main():
    # ObjectRefs are awaitable.
    value = await compute.remote(1)
    assert value == 101
    results = await asyncio.gather(*[compute.remote(i) for i in range(5)])
    assert results == [100, 101, 102, 103, 104]
    # Or wrap them as asyncio futures.
    fut = asyncio.wrap_future(compute.remote(7).future())
    assert await fut == 107


asyncio.run(main())

# ObjectRef.future() gives a concurrent.futures.Future.
fut = compute.remote(5).future()
assert fut.result(timeout=30) == 105
print("asyncio ok")
ray.shutdown()
