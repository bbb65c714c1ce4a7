import ray

ray.init(num_cpus=2)


@ray.remote(num_returns=3)
def chunks(n):
    # A generator with a fixed num_returns: each yield becomes one object.
    for i in range(3):
        yield list(range(i * n, (i + 1) * n))


refs = chunks.remote(2)
assert len(refs) == 3
assert ray.get(refs) == [[0, 1], [2, 3], [4, 5]]
print("generator num_returns ok")
ray.shutdown()
