import asyncio

import ray

ray.init(num_cpus=2)


@ray.remote
class Rendezvous:
    """An async actor: its methods run as coroutines on one event loop."""

    def __init__(self, parties):
        self.parties = parties
        self.arrived = 0
        self.all_here = asyncio.Event()

    async def arrive(self, name):
        self.arrived += 1
        if self.arrived == self.parties:
            self.all_here.set()
        # Every call waits here until all have arrived: this only finishes if
        # the calls really run concurrently.
        await self.all_here.wait()
        await asyncio.sleep(0.01)
        return f"{name} done"


r = Rendezvous.remote(5)
refs = [r.arrive.remote(f"p{i}") for i in range(5)]
assert ray.get(refs, timeout=60) == [f"p{i} done" for i in range(5)]


@ray.remote
class AsyncFetcher:
    async def fetch(self, ref_list):
        # Await other objects from inside an async actor.
        values = await asyncio.gather(*ref_list)
        return sum(values)


@ray.remote
def num(x):
    return x


fetcher = AsyncFetcher.remote()
assert ray.get(fetcher.fetch.remote([num.remote(i) for i in range(4)])) == 6
print("async actor ok")
ray.shutdown()
