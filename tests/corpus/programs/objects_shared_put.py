import numpy as np
import ray

ray.init(num_cpus=2)

# Put a large object once and pass the reference to every task, instead of
# passing the array itself (which would copy it into the store for each call).
weights = np.random.default_rng(0).random(200_000)
weights_ref = ray.put(weights)


@ray.remote
def dot(w, offset):
    return float(w[offset : offset + 1000].sum())


refs = [dot.remote(weights_ref, i * 1000) for i in range(50)]
partials = ray.get(refs)
assert np.isclose(sum(partials), weights[:50_000].sum())


@ray.remote
class Holder:
    def __init__(self, w):
        self.total = float(w.sum())

    def total_value(self):
        return self.total


holder = Holder.remote(weights_ref)
assert np.isclose(ray.get(holder.total_value.remote()), weights.sum())
print("shared put ok")
ray.shutdown()
