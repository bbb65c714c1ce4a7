import numpy as np
import ray

ray.init(num_cpus=2)

matrix = np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000)
ref = ray.put(matrix)

back = ray.get(ref)
assert back.shape == (1000, 1000)
assert np.array_equal(back, matrix)
# Arrays read from the object store are read-only views.
assert not back.flags.writeable


@ray.remote
def column_sums(m):
    return m.sum(axis=0)


@ray.remote
def scale(m, k):
    out = m * k  # a new array; the input cannot be modified in place
    return out


sums = ray.get(column_sums.remote(ref))
assert np.allclose(sums, matrix.sum(axis=0))
scaled = ray.get(scale.remote(ref, 2.0))
assert scaled[999, 999] == matrix[999, 999] * 2
copy = back.copy()
copy[0, 0] = -1
assert copy[0, 0] == -1
print("numpy ok")
ray.shutdown()
