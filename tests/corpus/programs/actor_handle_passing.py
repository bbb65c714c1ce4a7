import ray

ray.init(num_cpus=2)


@ray.remote
class Accumulator:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)

    def items_sorted(self):
        return sorted(self.items)


@ray.remote
def producer(acc, start):
    # Actor handles can be passed to tasks, which call the actor directly.
    ray.get([acc.add.remote(start + i) for i in range(3)])
    return start


@ray.remote
class Forwarder:
    def __init__(self, acc):
        self.acc = acc

    def forward(self, x):
        return ray.get(self.acc.add.remote(x * 1000))


acc = Accumulator.remote()
ray.get([producer.remote(acc, s) for s in (0, 10, 20)])
fwd = Forwarder.remote(acc)
ray.get(fwd.forward.remote(1))
assert ray.get(acc.items_sorted.remote()) == [0, 1, 2, 10, 11, 12, 20, 21, 22, 1000]
print("handle passing ok")
ray.shutdown()
