import ray

ray.init(num_cpus=2)


@ray.remote
def read_records(n):
    for i in range(n):
        yield {"id": i, "value": i * i}


@ray.remote
def transform(record):
    return record["value"] + 1


gen = read_records.remote(10)
assert isinstance(gen, ray.ObjectRefGenerator)
# Consume each item as soon as it is produced and pass it on to another task.
outputs = [transform.remote(ref) for ref in gen]
assert ray.get(outputs) == [i * i + 1 for i in range(10)]


@ray.remote(num_returns="streaming")
def countdown(n):
    while n > 0:
        yield n
        n -= 1


assert [ray.get(r) for r in countdown.remote(4)] == [4, 3, 2, 1]

# next() works as well, and StopIteration ends the stream.
g = countdown.remote(2)
assert ray.get(next(g)) == 2
assert ray.get(next(g)) == 1
try:
    next(g)
except StopIteration:
    pass
else:
    raise AssertionError("stream should be exhausted")
print("streaming ok")
ray.shutdown()
