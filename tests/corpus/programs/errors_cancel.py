import time

import ray
from ray.exceptions import TaskCancelledError

ray.init(num_cpus=1)


@ray.remote(num_cpus=0)
class Flag:
    def __init__(self):
        self.up = False

    def set(self):
        self.up = True

    def is_set(self):
        return self.up


@ray.remote
def long_running(started):
    ray.get(started.set.remote())
    while True:
        time.sleep(0.05)


@ray.remote
def queued():
    return "never"


started = Flag.remote()
running = long_running.remote(started)
while not ray.get(started.is_set.remote()):
    pass

# The only CPU is busy, so this task waits in the queue; cancel it there.
waiting = queued.remote()
ray.cancel(waiting)
try:
    ray.get(waiting, timeout=60)
except TaskCancelledError:
    pass
else:
    raise AssertionError("a queued task should be cancelled")

# Cancelling a running task interrupts it.
ray.cancel(running)
try:
    ray.get(running, timeout=60)
except TaskCancelledError:
    pass
else:
    raise AssertionError("a running task should be cancelled")


# The CPU is free again afterwards.
@ray.remote
def after():
    return "ran"


assert ray.get(after.remote(), timeout=60) == "ran"
print("cancel ok")
ray.shutdown()
