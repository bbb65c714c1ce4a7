import ray
from ray.dag import InputNode

ray.init(num_cpus=2)


@ray.remote
def preprocess(x):
    return x + 1


@ray.remote
def left(x):
    return x * 2


@ray.remote
def right(x):
    return x * 3


@ray.remote
def combine(a, b):
    return a + b


# Build the graph lazily with .bind(), then run it with different inputs.
with InputNode() as inp:
    pre = preprocess.bind(inp)
    dag = combine.bind(left.bind(pre), right.bind(pre))

assert ray.get(dag.execute(1)) == 10
assert ray.get(dag.execute(4)) == 25

# A bound function with constant arguments.
const = combine.bind(1, 2)
assert ray.get(const.execute()) == 3
print("dag tasks ok")
ray.shutdown()
