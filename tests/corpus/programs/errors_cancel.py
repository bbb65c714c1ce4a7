import time

import ray
from ray.exceptions import TaskCancelledError

ray.init(num_cpus=1)


@ray.remote
def long_running():
    while True:
        time.sleep(0.05)


@ray.remote
def queued():
    return "never"


running = long_running.remote()
waiting = queued.remote()  # waits for the only CPU

ray.cancel(waiting)
try:
    ray.get(waiting, timeout=30)
except TaskCancelledError:
    pass
else:
    raise AssertionError("a queued task should be cancelled")

ray.cancel(running)
try:
    ray.get(running, timeout=30)
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
