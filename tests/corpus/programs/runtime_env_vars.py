import os

import ray

ray.init(num_cpus=2, runtime_env={"env_vars": {"APP_MODE": "production"}})


@ray.remote
def read_env(name):
    return os.environ.get(name)


assert ray.get(read_env.remote("APP_MODE")) == "production"

# Per-task environments add to (and override) the job's.
custom = read_env.options(runtime_env={"env_vars": {"APP_MODE": "debug", "EXTRA": "1"}})
assert ray.get(custom.remote("APP_MODE")) == "debug"
assert ray.get(custom.remote("EXTRA")) == "1"


@ray.remote(runtime_env={"env_vars": {"ROLE": "reader"}})
class Service:
    def env(self):
        return os.environ.get("ROLE"), os.environ.get("APP_MODE")


assert ray.get(Service.remote().env.remote()) == ("reader", "production")
print("env vars ok")
ray.shutdown()
