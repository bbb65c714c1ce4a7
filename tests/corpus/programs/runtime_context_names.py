import ray

ray.init(num_cpus=2)


@ray.remote
def named_task():
    ctx = ray.get_runtime_context()
    return ctx.get_task_name(), ctx.get_task_function_name()


name, fn = ray.get(named_task.remote())
assert name == "named_task", name
assert fn.endswith("named_task"), fn
custom, _ = ray.get(named_task.options(name="custom-name").remote())
assert custom == "custom-name"


@ray.remote
class Worker:
    def info(self):
        ctx = ray.get_runtime_context()
        return (
            ctx.get_actor_name(),
            ctx.get_task_name(),
            ctx.was_current_actor_reconstructed,
            ctx.current_actor is not None,
        )


w = Worker.options(name="w1").remote()
actor_name, task_name, reconstructed, has_handle = ray.get(w.info.remote())
assert actor_name == "w1"
assert task_name == "Worker.info", task_name
assert reconstructed is False
assert has_handle
print("context names ok")
ray.shutdown()
