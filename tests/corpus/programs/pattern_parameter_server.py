import numpy as np
import ray

ray.init(num_cpus=2)

DIM = 10
TRUE_W = np.arange(DIM, dtype=np.float64)


@ray.remote
class ParameterServer:
    def __init__(self, lr):
        self.w = np.zeros(DIM)
        self.lr = lr

    def apply_gradients(self, *grads):
        self.w -= self.lr * np.mean(grads, axis=0)
        return self.w

    def get_weights(self):
        return self.w


@ray.remote
def compute_gradient(w, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, DIM))
    y = x @ TRUE_W
    return 2 * x.T @ (x @ w - y) / len(x)


ps = ParameterServer.remote(lr=0.1)
w = ps.get_weights.remote()
for step in range(30):
    grads = [compute_gradient.remote(w, step * 4 + k) for k in range(4)]
    w = ps.apply_gradients.remote(*grads)

final = ray.get(ps.get_weights.remote())
assert np.allclose(final, TRUE_W, atol=0.05), final
print("parameter server ok, error", float(np.abs(final - TRUE_W).max()))
ray.shutdown()
