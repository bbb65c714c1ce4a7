import ray

ray.init(num_cpus=2)


def tiny(x):
    return x * 2 + 1


@ray.remote
def tiny_task(x):
    return tiny(x)


@ray.remote
def batch_task(xs):
    # One task does a whole batch of small pieces of work.
    return [tiny(x) for x in xs]


items = list(range(1000))
batch_size = 100
batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
results = []
for part in ray.get([batch_task.remote(b) for b in batches]):
    results.extend(part)
assert results == [tiny(x) for x in items]

# Same answer with one task per item (slower, but still correct).
assert ray.get([tiny_task.remote(x) for x in items[:50]]) == [
    tiny(x) for x in items[:50]
]
print("batching ok")
ray.shutdown()
