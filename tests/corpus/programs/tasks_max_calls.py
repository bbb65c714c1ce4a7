import os

import ray

ray.init(num_cpus=2)


@ray.remote(max_calls=1)
def fresh_process():
    # With max_calls=1 each worker process runs one call and then exits.
    return os.getpid()


pids = ray.get([fresh_process.remote() for _ in range(4)])
assert len(set(pids)) == 4, pids


@ray.remote
def reused():
    return os.getpid()


assert all(isinstance(p, int) for p in ray.get([reused.remote() for _ in range(4)]))
print("max_calls ok")
ray.shutdown()
