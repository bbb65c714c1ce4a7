import ray

ray.init(num_cpus=2)


@ray.remote
class WorkQueue:
    def __init__(self, items):
        self.items = list(items)

    def get_batch(self, size):
        batch, self.items = self.items[:size], self.items[size:]
        return batch


@ray.remote
class Worker:
    def __init__(self, queue):
        self.queue = queue
        self.done = []

    def run(self):
        # Ask for the next batch before processing the current one, so fetching
        # overlaps with work.
        next_batch = self.queue.get_batch.remote(4)
        while True:
            batch = ray.get(next_batch)
            if not batch:
                break
            next_batch = self.queue.get_batch.remote(4)
            self.done.extend(x * 3 for x in batch)
        return self.done


queue = WorkQueue.remote(range(30))
worker = Worker.remote(queue)
out = ray.get(worker.run.remote())
assert out == [x * 3 for x in range(30)], out
print("pipelining ok")
ray.shutdown()
