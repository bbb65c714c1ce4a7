import ray
from ray.dag import InputNode, MultiOutputNode

ray.init(num_cpus=2)


@ray.remote
def scale(x, k):
    return x * k


@ray.remote
def offset(x, d):
    return x + d


# Input attributes pick positional and keyword arguments of execute().
with InputNode() as inp:
    a = scale.bind(inp[0], inp.factor)
    b = offset.bind(inp[1], inp.delta)
    dag = MultiOutputNode([a, b])

refs = dag.execute(3, 4, factor=10, delta=5)
assert ray.get(refs) == [30, 9]
print("dag multi output ok")
ray.shutdown()
