"""A training loop that checkpoints every epoch, early-stopped by ASHA."""

from __future__ import annotations

import json
import os
import tempfile

import ember as ray
from ember import tune
from ember.tune.schedulers import ASHAScheduler


def train_loop(config):
    start, weight = 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            state = json.load(f)
        start, weight = state["epoch"] + 1, state["weight"]
    for epoch in range(start, 8):
        weight += config["lr"] * (1.0 - weight)
        loss = (1.0 - weight) ** 2 + config["momentum"] / 100
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"epoch": epoch, "weight": weight}, f)
            tune.report({"loss": loss}, checkpoint=tune.Checkpoint.from_directory(d))


ray.init(num_cpus=2)
tuner = tune.Tuner(
    train_loop,
    param_space={
        "lr": tune.grid_search([0.05, 0.5, 0.2]),
        "momentum": tune.grid_search([0.9, 0.1]),
    },
    tune_config=tune.TuneConfig(
        metric="loss",
        mode="min",
        scheduler=ASHAScheduler(max_t=8, grace_period=2, reduction_factor=2),
    ),
    run_config=tune.RunConfig(
        verbose=0, checkpoint_config=tune.CheckpointConfig(num_to_keep=2)
    ),
)
results = tuner.fit()
best = results.get_best_result()
with best.checkpoint.as_directory() as d, open(os.path.join(d, "state.json")) as f:
    epoch = json.load(f)["epoch"]
print(
    "RESULT",
    json.dumps({"config": best.config, "epoch": epoch, "errors": results.num_errors}),
)
ray.shutdown()
