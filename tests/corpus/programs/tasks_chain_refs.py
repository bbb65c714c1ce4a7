import ray

ray.init(num_cpus=2)


@ray.remote
def load(n):
    return list(range(n))


@ray.remote
def double(values):
    return [v * 2 for v in values]


@ray.remote
def total(values):
    return sum(values)


# ObjectRefs passed as arguments are resolved before the task runs; the driver never
# touches the intermediate data.
data = load.remote(10)
doubled = double.remote(data)
result = total.remote(doubled)
assert ray.get(result) == 90


@ray.remote
def add(a, b):
    return a + b


# Diamond-shaped dependencies.
x = ray.put(5)
left = add.remote(x, 1)
right = add.remote(x, 2)
assert ray.get(add.remote(left, right)) == 13
print("chain ok")
ray.shutdown()
