import ray
from ray.exceptions import RayTaskError

ray.init(num_cpus=2)


@ray.remote
def divide(a, b):
    return a / b


try:
    ray.get(divide.remote(1, 0))
except ZeroDivisionError as e:
    # The error is both a RayTaskError and the original exception type.
    assert isinstance(e, RayTaskError)
    assert isinstance(e.cause, ZeroDivisionError)
    assert "division by zero" in str(e)
else:
    raise AssertionError("expected ZeroDivisionError")


# A failed result poisons the tasks that depend on it.
@ray.remote
def plus_one(x):
    return x + 1


try:
    ray.get(plus_one.remote(divide.remote(1, 0)))
except RayTaskError as e:
    assert isinstance(e, ZeroDivisionError)
else:
    raise AssertionError("dependent task should fail too")

# Errors in some tasks do not affect the others.
refs = [divide.remote(10, d) for d in (1, 2, 0, 5)]
ok, failed = [], 0
for r in refs:
    try:
        ok.append(ray.get(r))
    except ZeroDivisionError:
        failed += 1
assert ok == [10.0, 5.0, 2.0] and failed == 1
print("task error ok")
ray.shutdown()
