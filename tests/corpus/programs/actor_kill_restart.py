import ray

ray.init(num_cpus=2)


@ray.remote(max_restarts=1)
class Session:
    def __init__(self):
        self.hits = 0

    def hit(self):
        self.hits += 1
        return self.hits


s = Session.remote()
assert ray.get([s.hit.remote() for _ in range(3)]) == [1, 2, 3]

# no_restart=False lets a restartable actor come back after kill.
ray.kill(s, no_restart=False)
while True:
    try:
        value = ray.get(s.hit.remote(), timeout=60)
        break
    except ray.exceptions.RayActorError:
        continue
assert value == 1, value  # fresh state after the restart

# With the default no_restart=True it stays dead.
ray.kill(s)
try:
    while True:
        ray.get(s.hit.remote(), timeout=60)
except ray.exceptions.RayActorError:
    pass
print("kill and restart ok")
ray.shutdown()
