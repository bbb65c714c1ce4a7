import ray

ray.init(num_cpus=2)


@ray.remote(num_cpus=0)
class Attempts:
    def __init__(self):
        self.n = {}

    def bump(self, key):
        self.n[key] = self.n.get(key, 0) + 1
        return self.n[key]


class TransientError(Exception):
    pass


attempts = Attempts.remote()


@ray.remote(max_retries=3, retry_exceptions=True)
def flaky(counter):
    if ray.get(counter.bump.remote("flaky")) < 3:
        raise TransientError("try again")
    return "ok"


assert ray.get(flaky.remote(attempts)) == "ok"


# Only the listed exception types are retried.
@ray.remote(max_retries=3, retry_exceptions=[TransientError])
def picky(counter, kind):
    ray.get(counter.bump.remote(kind))
    if kind == "transient":
        raise TransientError("retry me")
    raise KeyError("do not retry me")


for kind, expected_type, expected_attempts in (
    ("transient", TransientError, 4),
    ("fatal", KeyError, 1),
):
    try:
        ray.get(picky.remote(attempts, kind))
    except expected_type:
        pass
    assert ray.get(attempts.bump.remote(kind)) == expected_attempts + 1


# Application errors are not retried by default.
@ray.remote
def once(counter):
    ray.get(counter.bump.remote("once"))
    raise ValueError("no retry")


try:
    ray.get(once.remote(attempts))
except ValueError:
    pass
assert ray.get(attempts.bump.remote("once")) == 2
print("retry_exceptions ok")
ray.shutdown()
