import ray

ray.init(num_cpus=2)


@ray.remote
class Stage:
    def __init__(self, name, fn_kind):
        self.name = name
        self.kind = fn_kind
        self.processed = 0

    def process(self, item):
        self.processed += 1
        if self.kind == "clean":
            return item.strip().lower()
        return len(item)

    def stats(self):
        return self.name, self.processed


cleaners = [Stage.remote(f"clean{i}", "clean") for i in range(2)]
measurer = Stage.remote("measure", "measure")
inputs = ["  Alpha", "BETA ", " gamma ", "Delta", "  epsilon  ", "ZETA"]

# Fan the first stage out round-robin, then chain refs into the second stage.
cleaned = [cleaners[i % 2].process.remote(x) for i, x in enumerate(inputs)]
lengths = [measurer.process.remote(c) for c in cleaned]
assert ray.get(lengths) == [len(x.strip()) for x in inputs]
assert ray.get(cleaned) == [x.strip().lower() for x in inputs]
stats = dict(ray.get([a.stats.remote() for a in [*cleaners, measurer]]))
assert stats == {"clean0": 3, "clean1": 3, "measure": 6}
print("pipeline ok")
ray.shutdown()
