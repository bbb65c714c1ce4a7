import ray
from ray.util import placement_group_table
from ray.util.placement_group import (
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

ray.init(num_cpus=2)

pg = placement_group([{"CPU": 1}], strategy="STRICT_PACK", name="my_pg")
ray.get(pg.ready())

table = placement_group_table(pg)
assert table["name"] == "my_pg"
assert table["strategy"] == "STRICT_PACK"
assert table["state"] == "CREATED"
assert table["bundles"] == {0: {"CPU": 1.0}}


@ray.remote(num_cpus=1)
def inside():
    current = get_current_placement_group()
    return None if current is None else current.id.hex()


strategy = PlacementGroupSchedulingStrategy(
    pg, placement_group_capture_child_tasks=True
)
assert ray.get(inside.options(scheduling_strategy=strategy).remote()) == pg.id.hex()
assert ray.get(inside.remote()) is None
assert get_current_placement_group() is None

remove_placement_group(pg)
assert placement_group_table(pg)["state"] == "REMOVED"
print("pg table ok")
ray.shutdown()
