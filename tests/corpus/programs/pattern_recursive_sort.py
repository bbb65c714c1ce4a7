import random

import ray

ray.init(num_cpus=2)


@ray.remote
def quicksort(values):
    # Recursive divide and conquer: small inputs are sorted locally.
    if len(values) <= 64:
        return sorted(values)
    pivot = values[len(values) // 2]
    lower = [v for v in values if v < pivot]
    equal = [v for v in values if v == pivot]
    upper = [v for v in values if v > pivot]
    left, right = quicksort.remote(lower), quicksort.remote(upper)
    return ray.get(left) + equal + ray.get(right)


rng = random.Random(7)
data = [rng.randint(0, 10_000) for _ in range(2000)]
assert ray.get(quicksort.remote(data)) == sorted(data)
print("recursive sort ok")
ray.shutdown()
