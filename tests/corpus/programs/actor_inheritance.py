import ray

ray.init(num_cpus=2)


class Shape:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return f"{self.name} with area {self.area():.1f}"

    def area(self):
        raise NotImplementedError


class Square(Shape):
    def __init__(self, side):
        super().__init__("square")
        self.side = side

    def area(self):
        return self.side**2

    def grow(self, by):
        self.side += by
        return self.area()


# Turn an existing class hierarchy into an actor without decorating it.
RemoteSquare = ray.remote(Square)
sq = RemoteSquare.remote(3)
assert ray.get(sq.describe.remote()) == "square with area 9.0"
assert ray.get(sq.grow.remote(1)) == 16

# Same for functions, including lambdas.
double = ray.remote(lambda x: 2 * x)
assert ray.get(double.remote(21)) == 42
heavy = ray.remote(num_cpus=1)(lambda: "ok")
assert ray.get(heavy.remote()) == "ok"
print("inheritance ok")
ray.shutdown()
