import ray

ray.init(num_cpus=2)


@ray.remote
class Cache:
    def __init__(self, tag):
        self.tag = tag
        self.data = {}

    def put(self, k, v):
        self.data[k] = v

    def get(self, k):
        return self.data.get(k), self.tag


c1 = Cache.options(name="cache", get_if_exists=True).remote("first")
ray.get(c1.put.remote("x", 42))
# The second call returns the existing actor; its constructor args are ignored.
c2 = Cache.options(name="cache", get_if_exists=True).remote("second")
assert ray.get(c2.get.remote("x")) == (42, "first")

# Without get_if_exists, a taken name is an error.
try:
    Cache.options(name="cache").remote("third")
except ValueError:
    pass
else:
    raise AssertionError("duplicate name should raise")
print("get_if_exists ok")
ray.shutdown()
