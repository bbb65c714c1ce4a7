# ruff: noqa  (seed program kept verbatim; see the docstring)
"""Seed 004 (分布式计算框架: Ray): the official-style task example, ``f(x) = x * x``
over ``range(4)`` (prints [0, 1, 4, 9]), followed by the Counter actor example.

The seed shows these as two separate snippets, each starting with ``import ray`` and
``ray.init()``. Here they share one file, so the second snippet's repeated import and
``ray.init()`` are kept only as a comment (a second ``init()`` raises RuntimeError).
Otherwise unchanged except ``import ember as ray``."""

import ember as ray

ray.init()


@ray.remote
def f(x):
    return x * x


futures = [f.remote(i) for i in range(4)]
print(ray.get(futures))  # [0, 1, 4, 9]

# import ray
# ray.init()


@ray.remote
class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value

    def get_counter(self):
        return self.value


# Create an actor from this class.
counter = Counter.remote()
