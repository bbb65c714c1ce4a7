import ray

ray.init(num_cpus=2)


@ray.remote
def square(x):
    return x * x


# Launch all tasks first, then fetch the results in one call.
futures = [square.remote(i) for i in range(20)]
results = ray.get(futures)
assert results == [i * i for i in range(20)], results

# A single ObjectRef works too.
assert ray.get(square.remote(12)) == 144
print("sum of squares:", sum(results))
ray.shutdown()
