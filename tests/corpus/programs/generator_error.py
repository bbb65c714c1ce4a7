import ray

ray.init(num_cpus=2)


@ray.remote
def parse(lines):
    for line in lines:
        yield int(line)


values = []
error = None
for ref in parse.remote(["1", "2", "x", "4"]):
    try:
        values.append(ray.get(ref))
    except ValueError as e:  # the task's error, raised where it happened
        error = e
        break

# The items yielded before the failure are intact.
assert values == [1, 2], values
assert isinstance(error, ray.exceptions.RayTaskError)
assert "invalid literal" in str(error)
print("generator error ok")
ray.shutdown()
