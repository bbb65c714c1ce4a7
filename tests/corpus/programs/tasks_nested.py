import ray

ray.init(num_cpus=2)


@ray.remote
def leaf(i):
    return i + 1


@ray.remote
def branch(n):
    # A task may submit more tasks and wait for them.
    return sum(ray.get([leaf.remote(i) for i in range(n)]))


@ray.remote
def root():
    refs = [branch.remote(n) for n in (1, 2, 3, 4)]
    return ray.get(refs)


assert ray.get(root.remote()) == [1, 3, 6, 10]


@ray.remote
def fib(n):
    if n < 2:
        return n
    a, b = ray.get([fib.remote(n - 1), fib.remote(n - 2)])
    return a + b


assert ray.get(fib.remote(6)) == 8
print("nested ok")
ray.shutdown()
