import ray

ray.init(num_cpus=2, namespace="services")


@ray.remote
class Config:
    def __init__(self):
        self.settings = {"mode": "fast"}

    def get(self, key):
        return self.settings[key]


# A detached actor is not tied to the lifetime of the driver's handle.
Config.options(name="config", lifetime="detached").remote()


@ray.remote
def read_mode():
    return ray.get(ray.get_actor("config").get.remote("mode"))


assert ray.get(read_mode.remote()) == "fast"
handle = ray.get_actor("config", namespace="services")
assert ray.get(handle.get.remote("mode")) == "fast"

# Detached actors must be killed explicitly. The kill is asynchronous: a call
# made right after it may still be answered.
ray.kill(handle)
try:
    for _ in range(1000):
        ray.get(handle.get.remote("mode"), timeout=60)
except ray.exceptions.RayActorError:
    pass
else:
    raise AssertionError("killed actor still answered")
print("detached ok")
ray.shutdown()
