import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(num_cpus=2)

head = ray.get_runtime_context().get_node_id()


@ray.remote
def where():
    return ray.get_runtime_context().get_node_id()


strict = NodeAffinitySchedulingStrategy(node_id=head, soft=False)
assert (
    ray.get([where.options(scheduling_strategy=strict).remote() for _ in range(3)])
    == [head] * 3
)


@ray.remote
class Pinned:
    def node(self):
        return ray.get_runtime_context().get_node_id()


soft = NodeAffinitySchedulingStrategy(node_id=head, soft=True)
p = Pinned.options(scheduling_strategy=soft).remote()
assert ray.get(p.node.remote()) == head
print("node affinity ok")
ray.shutdown()
