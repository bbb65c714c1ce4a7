import os
import time

import ray

ray.init(num_cpus=2)


@ray.remote(max_restarts=1)
class Session:
    def __init__(self):
        self.hits = 0

    def hit(self):
        self.hits += 1
        return self.hits

    def pid(self):
        return os.getpid()


s = Session.remote()
assert ray.get([s.hit.remote() for _ in range(3)]) == [1, 2, 3]
old_pid = ray.get(s.pid.remote())

# no_restart=False lets a restartable actor come back after kill. The kill is
# asynchronous, so wait until a new process answers.
ray.kill(s, no_restart=False)
deadline = time.monotonic() + 60
while True:
    assert time.monotonic() < deadline, "the actor did not come back"
    try:
        if ray.get(s.pid.remote(), timeout=60) != old_pid:
            break
    except ray.exceptions.RayActorError:
        pass
assert ray.get(s.hit.remote()) == 1  # fresh state after the restart

# With the default no_restart=True it stays dead.
ray.kill(s)
try:
    while True:
        ray.get(s.hit.remote(), timeout=60)
except ray.exceptions.RayActorError:
    pass
print("kill and restart ok")
ray.shutdown()
