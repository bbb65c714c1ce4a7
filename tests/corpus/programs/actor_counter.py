import ray

ray.init(num_cpus=2)


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def increment(self, by=1):
        self.value += by
        return self.value

    def read(self):
        return self.value


counter = Counter.remote()
refs = [counter.increment.remote() for _ in range(10)]
# Calls from one caller run in order, so the results count up.
assert ray.get(refs) == list(range(1, 11))
assert ray.get(counter.read.remote()) == 10

# Each actor has its own state.
counters = [Counter.remote(start=100 * i) for i in range(3)]
ray.get([c.increment.remote(5) for c in counters])
assert ray.get([c.read.remote() for c in counters]) == [5, 105, 205]
print("counter ok")
ray.shutdown()
