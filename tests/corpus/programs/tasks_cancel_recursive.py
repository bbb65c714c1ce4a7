import time

import ray
from ray.exceptions import TaskCancelledError

ray.init(num_cpus=2)


@ray.remote(num_cpus=0)
class Flag:
    def __init__(self):
        self.started = False

    def set(self):
        self.started = True

    def get(self):
        return self.started


@ray.remote
def child(flag):
    ray.get(flag.set.remote())
    while True:
        time.sleep(0.05)


@ray.remote
def parent(flag):
    return ray.get(child.remote(flag))


flag = Flag.remote()
ref = parent.remote(flag)
while not ray.get(flag.get.remote()):
    pass
# Cancelling the parent also cancels the tasks it submitted (recursive=True).
ray.cancel(ref, recursive=True)
try:
    ray.get(ref, timeout=30)
except TaskCancelledError:
    pass
else:
    raise AssertionError("parent should be cancelled")


# Both CPUs are free again.
@ray.remote
def ping():
    return "pong"


assert ray.get([ping.remote(), ping.remote()], timeout=60) == ["pong", "pong"]
print("recursive cancel ok")
ray.shutdown()
