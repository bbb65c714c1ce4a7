import os

import ray

ray.init(num_cpus=2)


@ray.remote(max_restarts=2, max_task_retries=0)
class Flaky:
    def __init__(self):
        self.calls = 0
        self.pid = os.getpid()

    def call(self):
        self.calls += 1
        return self.calls, self.pid

    def crash(self):
        os._exit(1)


actor = Flaky.remote()
calls, pid1 = ray.get(actor.call.remote())
assert calls == 1

try:
    ray.get(actor.crash.remote())
except ray.exceptions.RayActorError:
    pass
else:
    raise AssertionError("crash should surface as an actor error")

# The actor is restarted in a new process with fresh state.
while True:
    try:
        calls, pid2 = ray.get(actor.call.remote(), timeout=60)
        break
    except ray.exceptions.RayActorError:
        continue
assert calls == 1, calls
assert pid2 != pid1
print("max_restarts ok")
ray.shutdown()
