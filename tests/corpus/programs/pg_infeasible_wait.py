import ray
from ray.util.placement_group import placement_group, remove_placement_group

ray.init(num_cpus=2)

# Asking for more than the cluster has: the group stays pending.
too_big = placement_group([{"CPU": 8}])
assert not too_big.wait(timeout_seconds=1)
ready, _ = ray.wait([too_big.ready()], timeout=0.5)
assert ready == []
remove_placement_group(too_big)

# A group that fits becomes ready.
ok = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")
assert ok.wait(timeout_seconds=60)
remove_placement_group(ok)
print("pg wait ok")
ray.shutdown()
