import ray
from ray.util import list_named_actors

ray.init(num_cpus=2, namespace="team")


@ray.remote(num_cpus=0)
class Service:
    def name(self):
        return ray.get_runtime_context().get_actor_name()


a = Service.options(name="alpha").remote()
b = Service.options(name="beta").remote()
c = Service.options(name="gamma", namespace="elsewhere").remote()
assert ray.get([a.name.remote(), b.name.remote(), c.name.remote()]) == [
    "alpha",
    "beta",
    "gamma",
]

assert sorted(list_named_actors()) == ["alpha", "beta"]
everything = list_named_actors(all_namespaces=True)
assert {"name": "gamma", "namespace": "elsewhere"} in everything
assert {"name": "alpha", "namespace": "team"} in everything
print("list named ok")
ray.shutdown()
