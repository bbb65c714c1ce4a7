import ray

ray.init(num_cpus=2)


@ray.remote(num_returns=3)
def split(values):
    n = len(values) // 3
    return values[:n], values[n : 2 * n], values[2 * n :]


a, b, c = split.remote(list(range(9)))
assert ray.get(a) == [0, 1, 2]
assert ray.get(b) == [3, 4, 5]
assert ray.get(c) == [6, 7, 8]


@ray.remote
def min_max(values):
    return min(values), max(values)


# num_returns can also be chosen per call.
lo, hi = min_max.options(num_returns=2).remote([4, 9, 1, 7])
assert ray.get([lo, hi]) == [1, 9]

# With the default of one return, the tuple comes back as one object.
assert ray.get(min_max.remote([3, 2])) == (2, 3)
print("num_returns ok")
ray.shutdown()
