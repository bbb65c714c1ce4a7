from collections import Counter

import ray

ray.init(num_cpus=2)

TEXT = """the quick brown fox jumps over the lazy dog
the dog barks and the fox runs
a quick brown dog jumps over a lazy fox""".splitlines()

NUM_REDUCERS = 3


@ray.remote(num_returns=NUM_REDUCERS)
def map_words(line):
    # Partition the words of one document by hash, one output per reducer.
    parts = [[] for _ in range(NUM_REDUCERS)]
    for word in line.split():
        parts[sum(map(ord, word)) % NUM_REDUCERS].append((word, 1))
    return tuple(parts)


@ray.remote
def reduce_words(*partitions):
    counts = Counter()
    for part in partitions:
        for word, n in part:
            counts[word] += n
    return dict(counts)


mapped = [map_words.remote(line) for line in TEXT]
reduced = [reduce_words.remote(*[m[r] for m in mapped]) for r in range(NUM_REDUCERS)]
total = {}
for part in ray.get(reduced):
    assert not set(part) & set(total)  # each word goes to one reducer
    total.update(part)

expected = Counter(" ".join(TEXT).split())
assert total == dict(expected), total
assert total["the"] == 4 and total["fox"] == 3
print("word count ok")
ray.shutdown()
