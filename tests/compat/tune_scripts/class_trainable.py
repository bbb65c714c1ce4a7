"""A class trainable with setup/step/save_checkpoint/load_checkpoint and a stop rule."""

from __future__ import annotations

import json
import os

import ember as ray
from ember import tune


class Trainer(tune.Trainable):
    def setup(self, config):
        self.x = 0.0
        self.rate = config["rate"]

    def step(self):
        self.x += self.rate
        return {"distance": abs(3.0 - self.x)}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "x.json"), "w") as f:
            json.dump({"x": self.x}, f)

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "x.json")) as f:
            self.x = json.load(f)["x"]


ray.init(num_cpus=2)
tuner = tune.Tuner(
    Trainer,
    param_space={"rate": tune.grid_search([0.25, 0.5, 1.5])},
    tune_config=tune.TuneConfig(metric="distance", mode="min"),
    run_config=tune.RunConfig(
        stop={"training_iteration": 4},
        verbose=0,
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
    ),
)
results = tuner.fit()
best = results.get_best_result()
print(
    "RESULT",
    json.dumps(
        {
            "config": best.config,
            "iterations": sorted(r.metrics["training_iteration"] for r in results),
            "checkpointed": best.checkpoint is not None,
        }
    ),
)
ray.shutdown()
