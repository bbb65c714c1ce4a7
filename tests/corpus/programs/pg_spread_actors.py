import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

ray.init(num_cpus=3)

pg = placement_group([{"CPU": 1}] * 3, strategy="SPREAD")
assert pg.wait(timeout_seconds=60)


@ray.remote(num_cpus=1)
class Shard:
    def __init__(self, index):
        self.index = index

    def info(self):
        ctx = ray.get_runtime_context()
        return self.index, ctx.get_placement_group_id()


# One actor per bundle.
shards = [
    Shard.options(
        scheduling_strategy=PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=i
        )
    ).remote(i)
    for i in range(3)
]
infos = ray.get([s.info.remote() for s in shards])
assert [i for i, _ in infos] == [0, 1, 2]
assert all(pg_id == pg.id.hex() for _, pg_id in infos)

for s in shards:
    ray.kill(s)
remove_placement_group(pg)
print("SPREAD actors ok")
ray.shutdown()
