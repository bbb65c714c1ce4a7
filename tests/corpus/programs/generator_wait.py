import ray

ray.init(num_cpus=2)


@ray.remote
def produce(n):
    for i in range(n):
        yield i * 10


gen = produce.remote(3)
received = []
# A generator can be waited on: it is ready when its next item is available.
while True:
    ready, _ = ray.wait([gen], timeout=30)
    assert ready == [gen]
    try:
        ref = next(gen)
    except StopIteration:
        break
    received.append(ray.get(ref))
assert received == [0, 10, 20]


# Several generators consumed as their items arrive.
gens = [produce.remote(2) for _ in range(3)]
pending = list(gens)
items = []
while pending:
    ready, pending = ray.wait(pending, num_returns=1, timeout=30)
    for g in ready:
        try:
            items.append(ray.get(next(g)))
            pending.append(g)
        except StopIteration:
            pass
assert sorted(items) == [0, 0, 0, 10, 10, 10]
print("generator wait ok")
ray.shutdown()
