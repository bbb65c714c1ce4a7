import ray

ray.init(num_cpus=2)


@ray.remote
class Job:
    def __init__(self):
        self.steps = 0

    def step(self):
        self.steps += 1
        return self.steps

    def finish(self):
        # The actor ends itself once its work is done.
        ray.actor.exit_actor()


job = Job.remote()
assert ray.get([job.step.remote() for _ in range(3)]) == [1, 2, 3]
finish_ref = job.finish.remote()
try:
    ray.get(finish_ref)
except ray.exceptions.RayActorError:
    pass
else:
    raise AssertionError("exit_actor should end the call with an actor error")

try:
    ray.get(job.step.remote(), timeout=30)
except ray.exceptions.RayActorError:
    pass
else:
    raise AssertionError("the actor should be gone")
print("exit_actor ok")
ray.shutdown()
