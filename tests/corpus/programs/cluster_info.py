import ray

ray.init(num_cpus=2, resources={"special": 3})

total = ray.cluster_resources()
assert total["CPU"] == 2.0
assert total["special"] == 3.0
assert total["memory"] > 0 and total["object_store_memory"] > 0

free = ray.available_resources()
assert set(free) >= {"CPU", "special"}

nodes = ray.nodes()
assert len(nodes) == 1
node = nodes[0]
assert node["Alive"] is True
assert node["NodeID"] == ray.get_runtime_context().get_node_id()
assert node["Resources"]["CPU"] == 2.0
assert isinstance(node["NodeManagerAddress"], str)
assert ray.is_initialized()
ray.shutdown()
assert not ray.is_initialized()
print("cluster info ok")
