"""Offline batch inference with a stateful callable class on an actor pool (the docs' pattern)."""

from __future__ import annotations

import numpy as np

import ember as ray

ray.init(num_cpus=4)


class TinyModel:
    def __init__(self, weight: float):
        # load the "model" once per actor
        self.weight = weight

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"id": batch["id"], "score": batch["id"] * self.weight}


ds = ray.data.range(1000, override_num_blocks=10)
predictions = ds.map_batches(
    TinyModel, fn_constructor_args=(0.5,), concurrency=2, batch_size=64
)
rows = predictions.take_all()
print(
    "RESULT",
    len(rows),
    sum(r["score"] for r in rows),
    sorted(r["id"] for r in rows)[:3],
)
ray.shutdown()
