import math
import random

import ray

ray.init(num_cpus=2)


@ray.remote
class Progress:
    def __init__(self, total_tasks):
        self.total = total_tasks
        self.done = {}

    def report(self, task_id, n):
        self.done[task_id] = n

    def fraction(self):
        return len(self.done) / self.total


@ray.remote
def sample(task_id, n, progress):
    rng = random.Random(task_id)
    inside = 0
    for i in range(n):
        x, y = rng.random(), rng.random()
        inside += x * x + y * y <= 1
        if (i + 1) % 10_000 == 0:
            progress.report.remote(task_id, i + 1)
    return inside


TASKS, SAMPLES = 8, 20_000
progress = Progress.remote(TASKS)
refs = [sample.remote(i, SAMPLES, progress) for i in range(TASKS)]
inside = sum(ray.get(refs))
pi = 4 * inside / (TASKS * SAMPLES)
assert math.isclose(pi, math.pi, rel_tol=0.02), pi
# Progress reports were sent without waiting; they arrive eventually.
while ray.get(progress.fraction.remote()) < 1.0:
    pass
print(f"pi is about {pi:.4f}")
ray.shutdown()
