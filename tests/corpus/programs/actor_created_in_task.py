import ray

ray.init(num_cpus=2)


@ray.remote
class Accumulator:
    def __init__(self):
        self.total = 0

    def add(self, x):
        self.total += x
        return self.total


@ray.remote
def run_job(values):
    # A task can create its own actors and use them.
    acc = Accumulator.remote()
    for v in values:
        acc.add.remote(v)
    return ray.get(acc.add.remote(0))


assert ray.get([run_job.remote(range(5)), run_job.remote(range(10))]) == [10, 45]


@ray.remote
def make_named(name):
    Accumulator.options(name=name, lifetime="detached").remote()
    return name


name = ray.get(make_named.remote("shared-acc"))
acc = ray.get_actor(name)
assert ray.get(acc.add.remote(7)) == 7
ray.kill(acc)
print("actor in task ok")
ray.shutdown()
