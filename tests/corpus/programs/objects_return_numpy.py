import numpy as np
import ray

ray.init(num_cpus=2)


@ray.remote
def block(i, n):
    rng = np.random.default_rng(i)
    return rng.random((n, n))


@ray.remote
def matmul(a, b):
    return a @ b


n = 200
blocks = [block.remote(i, n) for i in range(4)]
products = [matmul.remote(blocks[i], blocks[i + 1]) for i in range(3)]
results = ray.get(products)
local = [np.random.default_rng(i).random((n, n)) for i in range(4)]
for i, r in enumerate(results):
    assert r.shape == (n, n)
    assert np.allclose(r, local[i] @ local[i + 1])


# Structured results: dicts of arrays.
@ray.remote
def stats(a):
    return {"mean": a.mean(axis=0), "max": a.max(axis=0)}


s = ray.get(stats.remote(blocks[0]))
assert np.allclose(s["mean"], local[0].mean(axis=0))
assert np.allclose(s["max"], local[0].max(axis=0))
print("return numpy ok")
ray.shutdown()
