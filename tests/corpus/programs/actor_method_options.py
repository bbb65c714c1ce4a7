import ray

ray.init(num_cpus=2)


@ray.remote
class Splitter:
    @ray.method(num_returns=2)
    def halves(self, items):
        mid = len(items) // 2
        return items[:mid], items[mid:]

    def triple(self, x):
        return x, x + 1, x + 2


s = Splitter.remote()
left, right = s.halves.remote([1, 2, 3, 4])
assert ray.get(left) == [1, 2] and ray.get(right) == [3, 4]

# num_returns per call via .options on the method.
a, b, c = s.triple.options(num_returns=3).remote(10)
assert ray.get([a, b, c]) == [10, 11, 12]

try:
    s.triple(1)
except TypeError:
    pass
else:
    raise AssertionError("actor methods must be called with .remote()")
print("method options ok")
ray.shutdown()
