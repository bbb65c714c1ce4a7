import ray

ray.init(num_cpus=2)


@ray.remote(num_cpus=0)
class Gate:
    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()
        return "opened"

    async def open(self):
        self.event.set()


@ray.remote
def quick():
    return "quick"


gate = Gate.remote()
slow = gate.wait.remote()
fast = quick.remote()
ray.get(fast)

# With a timeout, wait returns whatever is ready by then.
ready, not_ready = ray.wait([slow, fast], num_returns=2, timeout=0.5)
assert ready == [fast], ready
assert not_ready == [slow], not_ready

# timeout=0 just polls.
ready, not_ready = ray.wait([slow], timeout=0)
assert ready == [] and not_ready == [slow]

ray.get(gate.open.remote())
ready, not_ready = ray.wait([slow], timeout=30)
assert ready == [slow] and ray.get(slow) == "opened"
print("wait timeout ok")
ray.shutdown()
