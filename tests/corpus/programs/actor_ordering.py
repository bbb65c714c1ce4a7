import ray

ray.init(num_cpus=2)


@ray.remote
class Log:
    def __init__(self):
        self.lines = []

    def write(self, line):
        self.lines.append(line)

    def read(self):
        return list(self.lines)


log = Log.remote()
for i in range(50):
    log.write.remote(f"line {i}")
# Methods called by one caller execute in submission order.
assert ray.get(log.read.remote()) == [f"line {i}" for i in range(50)]


@ray.remote
def writer(log, tag):
    for i in range(5):
        log.write.remote(f"{tag}{i}")
    return ray.get(log.read.remote())


ray.get([writer.remote(log, "a"), writer.remote(log, "b")])
lines = ray.get(log.read.remote())[50:]
# Per-caller order is preserved even when callers interleave.
assert [x for x in lines if x.startswith("a")] == [f"a{i}" for i in range(5)]
assert [x for x in lines if x.startswith("b")] == [f"b{i}" for i in range(5)]
print("ordering ok")
ray.shutdown()
