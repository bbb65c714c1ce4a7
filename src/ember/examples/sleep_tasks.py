# ruff: noqa  (seed program kept verbatim; see the docstring)
"""Seed 001 (分布式计算引擎Ray): 100 tasks of ``time.sleep(0.1); return x * x`` with
ember versus the same work done serially. Unchanged except ``import ember as ray``."""

import ember as ray
import time

ray.init()
N = 100


@ray.remote
def f(x):
    time.sleep(0.1)
    return x * x


def f1(x):
    time.sleep(0.1)
    return x * x


def run_ray():
    start_time = time.time()
    futures = [f.remote(i) for i in range(N)]
    res = ray.get(futures)
    end_time = time.time()
    cost_time = end_time - start_time
    # print(f"res: {res}")
    print(f"run with ray cost time: {cost_time}")
    return cost_time


def run():
    start_time = time.time()
    res = [f1(i) for i in range(N)]
    end_time = time.time()
    cost_time = end_time - start_time
    # print(f"res: {res}")
    print(f"run cost time: {cost_time}")
    return cost_time


if __name__ == "__main__":
    run_ray()
    run()
