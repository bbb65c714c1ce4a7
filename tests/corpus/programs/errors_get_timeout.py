import asyncio

import ray
from ray.exceptions import GetTimeoutError

ray.init(num_cpus=2)


@ray.remote(num_cpus=0)
class Latch:
    def __init__(self):
        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()
        return "released"

    async def release(self):
        self.event.set()


latch = Latch.remote()
ref = latch.wait.remote()
try:
    ray.get(ref, timeout=0.5)
except GetTimeoutError as e:
    assert isinstance(e, TimeoutError)
else:
    raise AssertionError("get should have timed out")

ray.get(latch.release.remote())
assert ray.get(ref, timeout=30) == "released"
print("get timeout ok")
ray.shutdown()
