import threading

import ray

ray.init(num_cpus=2)


@ray.remote(max_concurrency=4)
class ThreadedService:
    def __init__(self):
        self.barrier = threading.Barrier(4, timeout=30)
        self.lock = threading.Lock()
        self.hits = 0

    def call(self, i):
        # Four calls must be inside the method at once to pass the barrier.
        self.barrier.wait()
        with self.lock:
            self.hits += 1
        return threading.current_thread().name, i

    def count(self):
        return self.hits


svc = ThreadedService.remote()
results = ray.get([svc.call.remote(i) for i in range(4)], timeout=60)
assert sorted(i for _, i in results) == [0, 1, 2, 3]
assert len({name for name, _ in results}) == 4  # four different threads
assert ray.get(svc.count.remote()) == 4
print("threaded actor ok")
ray.shutdown()
