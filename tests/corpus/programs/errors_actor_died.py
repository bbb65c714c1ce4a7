import os

import ray
from ray.exceptions import ActorDiedError, RayActorError

ray.init(num_cpus=2)


@ray.remote(max_restarts=0)
class Fragile:
    def pid(self):
        return os.getpid()

    def die(self):
        os._exit(1)


f = Fragile.remote()
ray.get(f.pid.remote())
try:
    ray.get(f.die.remote())
except ActorDiedError as e:
    assert isinstance(e, RayActorError)
else:
    raise AssertionError("expected ActorDiedError")

# Later calls fail the same way.
try:
    ray.get(f.pid.remote(), timeout=30)
except RayActorError:
    pass
else:
    raise AssertionError("a dead actor should not answer")


@ray.remote
class BadInit:
    def __init__(self):
        raise RuntimeError("cannot start")

    def ping(self):
        return "pong"


b = BadInit.remote()
try:
    ray.get(b.ping.remote(), timeout=60)
except ActorDiedError as e:
    assert "cannot start" in str(e)
else:
    raise AssertionError("an actor whose constructor fails is dead")
print("actor died ok")
ray.shutdown()
