import ray

ray.init(num_cpus=2)


@ray.remote
class Tokenizer:
    def __init__(self):
        self.seen = 0

    def tokens(self, text):
        for word in text.split():
            self.seen += 1
            yield word.lower()

    def count(self):
        return self.seen


@ray.remote
class AsyncSource:
    async def numbers(self, n):
        for i in range(n):
            yield i * 2


tok = Tokenizer.remote()
words = [ray.get(r) for r in tok.tokens.remote("The Quick Brown Fox")]
assert words == ["the", "quick", "brown", "fox"]
assert ray.get(tok.count.remote()) == 4

src = AsyncSource.remote()
assert [ray.get(r) for r in src.numbers.remote(5)] == [0, 2, 4, 6, 8]
print("actor generator ok")
ray.shutdown()
