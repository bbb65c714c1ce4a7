import ray

ray.init(num_cpus=2)


@ray.remote
def make(i):
    return i * 10


@ray.remote
def gather(refs):
    # References nested inside a list are not resolved for us.
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    return sum(ray.get(refs))


refs = [make.remote(i) for i in range(5)]
assert ray.get(gather.remote(refs)) == 100


@ray.remote
def lookup(table, key):
    return ray.get(table[key])


table = {"a": ray.put("alpha"), "b": ray.put("beta")}
assert ray.get(lookup.remote(table, "b")) == "beta"


@ray.remote
def produce_ref():
    # A task can return a reference to an object it created.
    return ray.put([1, 2, 3])


inner = ray.get(produce_ref.remote())
assert isinstance(inner, ray.ObjectRef)
assert ray.get(inner) == [1, 2, 3]
print("containers ok")
ray.shutdown()
