import ray

ray.init(num_cpus=2)


@ray.remote
def work(i):
    return i * i


pending = [work.remote(i) for i in range(12)]
seen = []
# Handle results one at a time as soon as any task is done.
while pending:
    ready, pending = ray.wait(pending, num_returns=1)
    assert len(ready) == 1
    seen.append(ray.get(ready[0]))

assert sorted(seen) == [i * i for i in range(12)]

# Ask for several at once.
refs = [work.remote(i) for i in range(6)]
ready, rest = ray.wait(refs, num_returns=4)
assert len(ready) == 4 and len(rest) == 2
assert set(ready) | set(rest) == set(refs)
ray.get(rest)
print("as-completed ok")
ray.shutdown()
