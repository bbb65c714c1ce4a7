"""Schedulers on a real local cluster: ASHA (20 trials), HyperBand, PBT, median stopping."""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest

import ember
from ember import tune
from ember.tune.schedulers import (
    ASHAScheduler,
    HyperBandScheduler,
    PopulationBasedTraining,
)

# heavy (autoscaling, kills, restarts, a CLI cluster): in the slow run
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def linear(config):
    for i in range(1, 11):
        tune.report({"score": config["x"] * i})


def _fit(tmp_path, trainable, space, **tune_kwargs):
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="max", **tune_kwargs),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
    ).fit()


@pytest.mark.slow
def test_asha_with_20_trials_stops_the_weak_early(cluster, tmp_path):
    grid = _fit(
        tmp_path,
        linear,
        {"x": tune.grid_search([(i * 7) % 20 for i in range(20)])},
        scheduler=ASHAScheduler(max_t=10, grace_period=1, reduction_factor=2),
    )
    assert len(grid) == 20
    assert grid.num_errors == 0
    iterations = [r.metrics["training_iteration"] for r in grid]
    assert min(iterations) < 10  # some stopped early
    assert grid.get_best_result().config["x"] == 19
    assert grid.get_best_result().metrics["training_iteration"] == 10


def test_asha_small(cluster, tmp_path):
    grid = _fit(
        tmp_path,
        linear,
        {"x": tune.grid_search([3, 2, 1, 0])},
        scheduler=ASHAScheduler(max_t=4, grace_period=1, reduction_factor=2),
        max_concurrent_trials=1,
    )
    iterations = [r.metrics["training_iteration"] for r in grid]
    # one at a time: each later (worse) trial is cut at its first rung
    assert iterations[0] == 4
    assert iterations[-1] == 1


def test_hyperband_pauses_and_halves(cluster, tmp_path):
    def steps(config):
        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with open(os.path.join(checkpoint.path, "i")) as f:
                start = int(f.read())
        for i in range(start + 1, 4):
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "i"), "w") as f:
                    f.write(str(i))
                tune.report(
                    {"score": config["x"] * i},
                    checkpoint=tune.Checkpoint.from_directory(d),
                )

    grid = _fit(
        tmp_path,
        steps,
        {"x": tune.grid_search([1, 2, 3])},
        scheduler=HyperBandScheduler(max_t=3, reduction_factor=3),
    )
    iterations = {r.config["x"]: r.metrics["training_iteration"] for r in grid}
    # 3 trials to milestone 1, the best one (x=3) on to max_t
    assert iterations == {1: 1, 2: 1, 3: 3}
    assert grid.num_errors == 0


def _lockstep(folder, me, step, population=2, deadline_s=30.0):
    """Mark ``step`` done by ``me``; wait (bounded) until the population did too."""
    open(os.path.join(folder, f"{me}-{step}"), "w").close()
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        done = [n for n in os.listdir(folder) if n.endswith(f"-{step}")]
        if len(done) >= population:
            return
        time.sleep(0.02)  # the workload waits for its population (bounded)


def pbt_trainable(config):
    me = tune.get_context().get_trial_id()
    score, start = 0.0, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            state = json.load(f)
        score, start = state["score"], state["step"]
        for skipped in range(1, start + 1):
            open(os.path.join(config["folder"], f"{me}-{skipped}"), "w").close()
    for step in range(start + 1, 9):
        score += config["lr"]
        _lockstep(config["folder"], me, step)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"score": score, "step": step}, f)
            tune.report(
                {"score": score, "lr": config["lr"]},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def test_pbt_exploits_checkpoints_and_explores(cluster, tmp_path):
    folder = tmp_path / "steps"
    folder.mkdir()
    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=2,
        quantile_fraction=0.5,
        resample_probability=0.0,
        hyperparam_mutations={"lr": [0.01, 0.02, 0.5, 1.0]},
        seed=1,
    )
    grid = _fit(
        tmp_path,
        pbt_trainable,
        {"lr": tune.grid_search([0.01, 1.0]), "folder": str(folder)},
        scheduler=pbt,
    )
    assert grid.num_errors == 0
    finals = sorted(r.metrics["score"] for r in grid)
    # without exploitation the weak one ends at 8 * 0.01; it clones the strong
    # one's checkpoint and explores from its lr, so it ends well above that
    assert finals[0] > 1
    changed = [r for r in grid if r.config["lr"] != r.metrics_dataframe["lr"].iloc[0]]
    assert changed  # some trial's config was explored
    with open(os.path.join(changed[0].path, "params.json")) as f:
        # rewritten with the explored config (0.5 or 1.0, from the strong trial's)
        assert json.load(f)["lr"] in (0.5, 1.0)
