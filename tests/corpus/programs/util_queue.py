import ray
from ray.util.queue import Empty, Queue

ray.init(num_cpus=2)

queue = Queue(maxsize=100)


@ray.remote
def producer(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)  # end marker


@ray.remote
class Consumer:
    def __init__(self, q):
        self.q = q

    def drain(self):
        items = []
        while True:
            item = self.q.get(timeout=30)
            if item is None:
                return items
            items.append(item)


consumer = Consumer.remote(queue)
producer.remote(queue, 20)
assert ray.get(consumer.drain.remote()) == list(range(20))

queue.put_nowait_batch([1, 2, 3])
assert queue.qsize() == 3
assert queue.get_nowait_batch(3) == [1, 2, 3]
assert queue.empty()
try:
    queue.get(block=False)
except Empty:
    pass
else:
    raise AssertionError("empty queue returned an item")
print("queue ok")
ray.shutdown()
