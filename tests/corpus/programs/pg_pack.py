import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

ray.init(num_cpus=4)

# Reserve two bundles of one CPU each, packed onto as few nodes as possible.
pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")
ray.get(pg.ready(), timeout=60)
assert pg.bundle_count == 2


@ray.remote(num_cpus=1)
def where():
    return ray.get_runtime_context().get_node_id()


strategy = PlacementGroupSchedulingStrategy(placement_group=pg)
nodes = ray.get(
    [where.options(scheduling_strategy=strategy).remote() for _ in range(4)]
)
assert len(set(nodes)) == 1

# The reserved CPUs are no longer available to other work.
assert ray.available_resources().get("CPU", 0) <= 2

remove_placement_group(pg)
print("PACK ok")
ray.shutdown()
