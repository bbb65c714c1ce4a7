import asyncio

import ray

ray.init(num_cpus=2)


@ray.remote(concurrency_groups={"io": 2, "compute": 1})
class Service:
    def __init__(self):
        self.io_inside = 0
        self.io_peak = 0
        self.both_in = asyncio.Event()

    @ray.method(concurrency_group="io")
    async def fetch(self, i):
        self.io_inside += 1
        self.io_peak = max(self.io_peak, self.io_inside)
        if self.io_inside == 2:
            self.both_in.set()
        # Two calls of the "io" group run at once, so both reach this point.
        await self.both_in.wait()
        self.io_inside -= 1
        return i

    @ray.method(concurrency_group="compute")
    async def crunch(self, n):
        return sum(range(n))

    async def peak(self):
        return self.io_peak


svc = Service.remote()
assert ray.get([svc.fetch.remote(i) for i in range(4)], timeout=60) == [0, 1, 2, 3]
assert ray.get(svc.crunch.remote(10)) == 45
assert ray.get(svc.peak.remote()) == 2
# A call can pick its group explicitly.
assert ray.get(svc.crunch.options(concurrency_group="io").remote(5)) == 10
print("concurrency groups ok")
ray.shutdown()
