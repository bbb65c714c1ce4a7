import os

import ray
from ray.exceptions import WorkerCrashedError

ray.init(num_cpus=2)


@ray.remote(max_retries=0)
def segfault_like():
    os._exit(1)


try:
    ray.get(segfault_like.remote(), timeout=60)
except WorkerCrashedError:
    pass
else:
    raise AssertionError("expected WorkerCrashedError")


@ray.remote
def fine():
    return "still working"


assert ray.get(fine.remote()) == "still working"
print("worker crash ok")
ray.shutdown()
