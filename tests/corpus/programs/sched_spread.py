import ray

ray.init(num_cpus=2)


@ray.remote(scheduling_strategy="SPREAD")
def task(i):
    return i, ray.get_runtime_context().get_node_id()


results = ray.get([task.remote(i) for i in range(6)])
assert [i for i, _ in results] == list(range(6))
node_ids = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
assert {node for _, node in results} <= node_ids


@ray.remote
class Replica:
    def node(self):
        return ray.get_runtime_context().get_node_id()


replicas = [Replica.options(scheduling_strategy="SPREAD").remote() for _ in range(2)]
assert set(ray.get([r.node.remote() for r in replicas])) <= node_ids

# "DEFAULT" is accepted as well.
assert ray.get(task.options(scheduling_strategy="DEFAULT").remote(9))[0] == 9
print("SPREAD ok")
ray.shutdown()
