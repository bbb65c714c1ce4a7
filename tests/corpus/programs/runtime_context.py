import ray

ray.init(num_cpus=2, namespace="ctx-demo")

ctx = ray.get_runtime_context()
job_id = ctx.get_job_id()
node_id = ctx.get_node_id()
assert isinstance(job_id, str) and isinstance(node_id, str)
assert ctx.get_task_id() is None  # the driver runs no task
assert ctx.get_actor_id() is None
assert ctx.namespace == "ctx-demo"


@ray.remote
def task_info():
    c = ray.get_runtime_context()
    return {
        "job": c.get_job_id(),
        "node": c.get_node_id(),
        "task": c.get_task_id(),
        "actor": c.get_actor_id(),
        "worker": c.get_worker_id(),
        "ns": c.namespace,
    }


info = ray.get(task_info.remote())
assert info["job"] == job_id and info["node"] == node_id
assert isinstance(info["task"], str) and info["actor"] is None
assert info["worker"] != ctx.get_worker_id()
assert info["ns"] == "ctx-demo"


@ray.remote
class Probe:
    def ids(self):
        c = ray.get_runtime_context()
        return c.get_actor_id(), c.get_task_id()


p = Probe.remote()
actor_id, task_id = ray.get(p.ids.remote())
actor_id2, task_id2 = ray.get(p.ids.remote())
assert isinstance(actor_id, str) and actor_id == actor_id2
assert isinstance(task_id, str) and task_id != task_id2
print("runtime context ok")
ray.shutdown()
