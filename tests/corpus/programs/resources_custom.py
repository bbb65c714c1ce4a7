import ray

ray.init(num_cpus=2, resources={"disk": 2, "license": 1})

assert ray.cluster_resources()["disk"] == 2.0
assert ray.cluster_resources()["license"] == 1.0


@ray.remote(resources={"disk": 1})
def write_shard(i):
    return i, ray.get_runtime_context().get_assigned_resources()


results = ray.get([write_shard.remote(i) for i in range(4)])
for _, res in results:
    assert res == {"CPU": 1.0, "disk": 1.0}, res


@ray.remote(num_cpus=0, resources={"license": 1})
def licensed():
    return ray.get_runtime_context().get_assigned_resources()


assert ray.get(licensed.remote()) == {"license": 1.0}
# A request that can never be met stays pending rather than failing.
stuck = write_shard.options(resources={"disk": 5}).remote(99)
ready, _ = ray.wait([stuck], timeout=0.5)
assert ready == []
ray.cancel(stuck)
print("custom resources ok")
ray.shutdown()
