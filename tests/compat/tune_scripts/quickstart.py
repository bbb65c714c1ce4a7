"""Tune's quickstart: a function that returns its score, searched over a grid."""

from __future__ import annotations

import json

import ember as ray
from ember import tune


def objective(config):
    score = config["a"] ** 2 + config["b"]
    return {"score": score}


search_space = {
    "a": tune.grid_search([0.001, 0.01, 0.1, 1.0]),
    "b": tune.grid_search([1, 2, 3]),
}

ray.init(num_cpus=2)
tuner = tune.Tuner(
    objective,
    param_space=search_space,
    run_config=tune.RunConfig(verbose=0),
)
results = tuner.fit()
best = results.get_best_result(metric="score", mode="min")
print("RESULT", json.dumps({"config": best.config, "trials": len(results)}))
ray.shutdown()
