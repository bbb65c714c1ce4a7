from dataclasses import dataclass, field

import ray

ray.init(num_cpus=2)


@dataclass
class Order:
    item: str
    quantity: int
    price: float
    tags: list = field(default_factory=list)

    def total(self):
        return self.quantity * self.price


class Inventory:
    def __init__(self):
        self.stock = {}

    def add(self, item, n):
        self.stock[item] = self.stock.get(item, 0) + n


@ray.remote
def price_orders(orders):
    return [o.total() for o in orders]


@ray.remote
def restock(inv, item):
    inv.add(item, 10)
    return inv  # mutations happen on a copy and are sent back


orders = [Order("pen", 3, 1.5), Order("book", 1, 12.0, ["gift"])]
assert ray.get(price_orders.remote(orders)) == [4.5, 12.0]

inv = Inventory()
inv.add("pen", 1)
updated = ray.get(restock.remote(inv, "pen"))
assert updated.stock == {"pen": 11}
assert inv.stock == {"pen": 1}  # the driver's copy is untouched
echo = ray.get(ray.put(orders[1]))
assert echo == orders[1] and echo.tags == ["gift"]
print("custom classes ok")
ray.shutdown()
