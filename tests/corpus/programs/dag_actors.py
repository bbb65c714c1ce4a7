import ray
from ray.dag import InputNode

ray.init(num_cpus=2)


@ray.remote
class Adder:
    def __init__(self, base):
        self.base = base
        self.calls = 0

    def add(self, x):
        self.calls += 1
        return self.base + x

    def count(self):
        return self.calls


@ray.remote
def square(x):
    return x * x


adder = Adder.remote(100)
with InputNode() as inp:
    dag = square.bind(adder.add.bind(inp))

assert ray.get(dag.execute(2)) == 102**2
assert ray.get(dag.execute(3)) == 103**2
# The graph used the same live actor both times.
assert ray.get(adder.count.remote()) == 2
print("dag actors ok")
ray.shutdown()
