import ray

ray.init(num_cpus=2, resources={"gpu_slot": 2})


@ray.remote(num_cpus=1, resources={"gpu_slot": 1})
class Trainer:
    def resources(self):
        return ray.get_runtime_context().get_assigned_resources()


@ray.remote
class Light:
    def resources(self):
        return ray.get_runtime_context().get_assigned_resources()


t = Trainer.remote()
assert ray.get(t.resources.remote()) == {"CPU": 1.0, "gpu_slot": 1.0}
# A default actor holds no CPU while it lives.
assert ray.get(Light.remote().resources.remote()) == {}

# Two trainers fit; their reservations show up in available_resources.
t2 = Trainer.options(resources={"gpu_slot": 1}).remote()
ray.get(t2.resources.remote())
avail = ray.available_resources()
assert avail.get("gpu_slot", 0) == 0, avail
assert ray.cluster_resources()["gpu_slot"] == 2
print("actor resources ok")
ray.shutdown()
