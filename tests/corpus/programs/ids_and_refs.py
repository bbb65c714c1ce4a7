import ray

ray.init(num_cpus=2)

ref = ray.put("payload")
assert isinstance(ref, ray.ObjectRef)
hex_id = ref.hex()
assert int(hex_id, 16) >= 0
assert ray.ObjectRef(ref.binary()) == ref
assert {ref: 1}[ray.ObjectRef.from_binary(ref.binary())] == 1
assert repr(ref) == f"ObjectRef({hex_id})"

ctx = ray.get_runtime_context()
node = ray.NodeID.from_hex(ctx.get_node_id())
assert node.hex() == ctx.get_node_id()
job = ray.JobID.from_hex(ctx.get_job_id())
assert job.hex() == ctx.get_job_id()


@ray.remote
def my_task_id():
    return ray.get_runtime_context().get_task_id()


task_hex = ray.get(my_task_id.remote())
assert ray.TaskID.from_hex(task_hex).hex() == task_hex


@ray.remote
class A:
    def my_id(self):
        return ray.get_runtime_context().get_actor_id()


a = A.remote()
actor_hex = ray.get(a.my_id.remote())
assert ray.ActorID.from_hex(actor_hex).hex() == actor_hex
assert (
    ray.get_runtime_context().get_worker_id()
    == ray.WorkerID.from_hex(ctx.get_worker_id()).hex()
)
print("ids ok")
ray.shutdown()
