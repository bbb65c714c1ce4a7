"""Ray Data quickstart, as the docs write it: load, transform, consume."""

from __future__ import annotations

import numpy as np

import ember as ray

ray.init(num_cpus=2)

ds = ray.data.from_items(
    [{"sepal.length": float(i % 7), "petal.length": float(i % 5)} for i in range(150)]
)


def transform_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    vec_a = batch["petal.length"]
    vec_b = batch["sepal.length"]
    batch["petal.area"] = vec_a * vec_b
    return batch


transformed = ds.map_batches(transform_batch)
big = transformed.filter(lambda row: row["petal.area"] > 10.0)
total = sum(batch["petal.area"].sum() for batch in big.iter_batches(batch_size=32))
print("RESULT", big.count(), sorted(transformed.schema().names), float(total))
ray.shutdown()
