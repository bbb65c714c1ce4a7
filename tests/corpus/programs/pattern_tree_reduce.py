import ray

ray.init(num_cpus=2)


@ray.remote
def partial_sum(values):
    return sum(values)


@ray.remote
def combine(a, b):
    return a + b


data = list(range(1000))
# Leaves: one task per chunk.
level = [partial_sum.remote(data[i : i + 50]) for i in range(0, len(data), 50)]
# Reduce pairwise, like a tree, so no single task waits on everything.
while len(level) > 1:
    nxt = [combine.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    level = nxt

assert ray.get(level[0]) == sum(data)
print("tree reduce ok")
ray.shutdown()
