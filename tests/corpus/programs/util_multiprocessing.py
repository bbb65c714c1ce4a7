import ray
from ray.util.multiprocessing import Pool

ray.init(num_cpus=2)


def cube(x):
    return x**3


def add(a, b):
    return a + b


# A drop-in replacement for multiprocessing.Pool backed by actors.
with Pool(processes=2) as pool:
    assert pool.map(cube, range(10)) == [x**3 for x in range(10)]
    assert sorted(pool.imap_unordered(cube, range(5))) == [0, 1, 8, 27, 64]
    assert list(pool.imap(cube, range(4))) == [0, 1, 8, 27]
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    result = pool.apply_async(add, (10, 20))
    assert result.get(timeout=30) == 30
    assert pool.apply(cube, (3,)) == 27
print("multiprocessing ok")
ray.shutdown()
