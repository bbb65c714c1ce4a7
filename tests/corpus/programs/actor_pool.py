import ray
from ray.util import ActorPool

ray.init(num_cpus=2)


@ray.remote
class Model:
    def __init__(self, factor):
        self.factor = factor

    def predict(self, x):
        return x * self.factor


actors = [Model.remote(10), Model.remote(10)]
pool = ActorPool(actors)

# map keeps the input order.
out = list(pool.map(lambda a, v: a.predict.remote(v), range(8)))
assert out == [v * 10 for v in range(8)]

# map_unordered yields results as they finish.
out = list(pool.map_unordered(lambda a, v: a.predict.remote(v), range(8)))
assert sorted(out) == [v * 10 for v in range(8)]

# Manual submit / get_next.
for v in (3, 4, 5):
    pool.submit(lambda a, v: a.predict.remote(v), v)
got = []
while pool.has_next():
    got.append(pool.get_next())
assert got == [30, 40, 50]
assert pool.has_free()
print("actor pool ok")
ray.shutdown()
