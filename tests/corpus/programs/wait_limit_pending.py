import ray

ray.init(num_cpus=2)

MAX_IN_FLIGHT = 3


@ray.remote(num_cpus=0)
class Tracker:
    def __init__(self):
        self.running = 0
        self.peak = 0

    def enter(self):
        self.running += 1
        self.peak = max(self.peak, self.running)

    def leave(self):
        self.running -= 1

    def get_peak(self):
        return self.peak


@ray.remote
def process(tracker, i):
    ray.get(tracker.enter.remote())
    result = sum(range(i * 1000))
    ray.get(tracker.leave.remote())
    return result


tracker = Tracker.remote()
in_flight = []
results = []
# Backpressure: never keep more than MAX_IN_FLIGHT tasks pending.
for i in range(15):
    if len(in_flight) >= MAX_IN_FLIGHT:
        ready, in_flight = ray.wait(in_flight, num_returns=1)
        results.extend(ray.get(ready))
    in_flight.append(process.remote(tracker, i))
results.extend(ray.get(in_flight))

assert sorted(results) == sorted(sum(range(i * 1000)) for i in range(15))
assert 1 <= ray.get(tracker.get_peak.remote()) <= MAX_IN_FLIGHT
print("limit pending ok")
ray.shutdown()
