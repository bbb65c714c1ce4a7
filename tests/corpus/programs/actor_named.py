import ray

ray.init(num_cpus=2, namespace="inventory")


@ray.remote
class Registry:
    def __init__(self):
        self.entries = {}

    def register(self, key, value):
        self.entries[key] = value

    def lookup(self, key):
        return self.entries.get(key)


registry = Registry.options(name="registry").remote()


@ray.remote
def writer(key, value):
    # Look the actor up by name instead of passing its handle.
    reg = ray.get_actor("registry")
    ray.get(reg.register.remote(key, value))


ray.get([writer.remote("a", 1), writer.remote("b", 2)])
reg = ray.get_actor("registry")
assert ray.get(reg.lookup.remote("a")) == 1
assert ray.get(reg.lookup.remote("b")) == 2
assert ray.get_runtime_context().namespace == "inventory"

# Names live in namespaces.
other_registry = Registry.options(name="registry", namespace="other").remote()
other = ray.get_actor("registry", namespace="other")
assert ray.get(other.lookup.remote("a")) is None

try:
    ray.get_actor("no-such-actor")
except ValueError:
    pass
else:
    raise AssertionError("expected ValueError for an unknown name")
print("named actor ok")
ray.shutdown()
