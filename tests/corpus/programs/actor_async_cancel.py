import asyncio

import ray
from ray.exceptions import TaskCancelledError

ray.init(num_cpus=2)


@ray.remote
class Downloader:
    def __init__(self):
        self.cancelled = 0
        self.started = False

    async def download(self):
        self.started = True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return "finished"

    async def cancelled_count(self):
        return self.cancelled

    async def is_started(self):
        return self.started


d = Downloader.remote()
ref = d.download.remote()
# Wait until the call is running, then cancel it: the coroutine is cancelled.
while not ray.get(d.is_started.remote()):
    pass
ray.cancel(ref)
try:
    ray.get(ref, timeout=30)
except TaskCancelledError:
    pass
else:
    raise AssertionError("the call should have been cancelled")

# The coroutine saw the cancellation, and the actor itself keeps working.
assert ray.get(d.cancelled_count.remote()) == 1
print("async cancel ok")
ray.shutdown()
