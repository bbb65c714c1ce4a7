import asyncio

import ray

ray.init(num_cpus=1)


@ray.remote(num_cpus=0)
class Barrier:
    def __init__(self, n):
        self.n = n
        self.count = 0
        self.event = asyncio.Event()

    async def arrive(self):
        self.count += 1
        if self.count >= self.n:
            self.event.set()
        await self.event.wait()


@ray.remote(num_cpus=0.25)
def quarter(barrier):
    # Four quarter-CPU tasks fit on one CPU at the same time.
    ray.get(barrier.arrive.remote())
    return ray.get_runtime_context().get_assigned_resources()


barrier = Barrier.remote(4)
results = ray.get([quarter.remote(barrier) for _ in range(4)], timeout=60)
assert all(r == {"CPU": 0.25} for r in results), results


@ray.remote(num_cpus=0.5)
class Half:
    def res(self):
        return ray.get_runtime_context().get_assigned_resources()


assert ray.get(Half.remote().res.remote()) == {"CPU": 0.5}
print("fractional ok")
ray.shutdown()
