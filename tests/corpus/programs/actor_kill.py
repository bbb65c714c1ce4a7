import ray
from ray.exceptions import ActorDiedError, RayActorError

ray.init(num_cpus=2)


@ray.remote
class Worker:
    def ping(self):
        return "pong"


w = Worker.remote()
assert ray.get(w.ping.remote()) == "pong"
ray.kill(w)

# After kill, calls fail with an actor error (soon, if not at once).
for _ in range(100):
    try:
        ray.get(w.ping.remote(), timeout=30)
    except ActorDiedError as e:
        assert isinstance(e, RayActorError)
        break
else:
    raise AssertionError("actor still alive after ray.kill")

# Other actors are unaffected.
w2 = Worker.remote()
assert ray.get(w2.ping.remote()) == "pong"
print("kill ok")
ray.shutdown()
