import os
import tempfile

import ray

ray.init(num_cpus=2)

scratch = tempfile.mkdtemp()


@ray.remote(max_retries=3)
def unstable(path):
    # Crash the worker on the first two attempts; system failures are retried.
    attempts = len(os.listdir(path))
    open(os.path.join(path, f"attempt-{attempts}"), "w").close()
    if attempts < 2:
        os._exit(1)
    return attempts + 1


assert ray.get(unstable.remote(scratch), timeout=60) == 3
assert len(os.listdir(scratch)) == 3
print("max_retries ok")
ray.shutdown()
