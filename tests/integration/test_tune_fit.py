"""Tuner.fit on a real local cluster: trials as actors, files, checkpoints, failures."""

from __future__ import annotations

import json
import os
import signal
import tempfile

import pandas
import pytest

import ember
from ember import tune
from ember.exceptions import RayActorError, RayTaskError

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def quadratic(config):
    for i in range(3):
        tune.report({"score": -((config["x"] - 3) ** 2) + i, "step": i})


def _run(tmp_path, trainable, space, **kwargs):
    run = kwargs.pop("run_config", {})
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(**kwargs),
        run_config=tune.RunConfig(
            name="exp", storage_path=str(tmp_path), verbose=0, **run
        ),
    )
    return tuner.fit()


def test_grid_fit_finds_the_best_config_and_writes_trial_files(cluster, tmp_path):
    grid = _run(
        tmp_path,
        quadratic,
        {"x": tune.grid_search([1, 2, 3, 4]), "lr": tune.loguniform(1e-4, 1e-1)},
        metric="score",
        mode="max",
    )
    assert len(grid) == 4
    assert grid.num_terminated == 4
    assert grid.num_errors == 0
    best = grid.get_best_result()
    assert best.config["x"] == 3
    assert best.metrics["score"] == 2
    assert best.metrics["training_iteration"] == 3
    assert best.metrics["done"] is True
    assert {"trial_id", "time_total_s", "pid", "date", "config"} <= set(best.metrics)
    assert [r.config["x"] for r in grid] == [1, 2, 3, 4]
    files = set(os.listdir(best.path))
    assert {"params.json", "params.pkl", "result.json", "progress.csv"} <= files
    with open(os.path.join(best.path, "params.json")) as f:
        assert json.load(f)["x"] == 3
    rows = pandas.read_csv(os.path.join(best.path, "progress.csv"))
    assert list(rows["step"]) == [0, 1, 2]
    assert len(best.metrics_dataframe) == 3
    frame = grid.get_dataframe()
    assert sorted(frame["config/x"]) == [1, 2, 3, 4]
    assert "logdir" in frame
    assert grid.experiment_path == str(tmp_path / "exp")
    assert tune.Tuner.can_restore(grid.experiment_path)


def test_num_samples_and_stop_dict(cluster, tmp_path):
    def forever(config):
        i = 0
        while True:
            i += 1
            tune.report({"i": i})

    grid = _run(
        tmp_path,
        forever,
        {"a": tune.choice([1, 2])},
        num_samples=3,
        run_config={"stop": {"training_iteration": 4}},
    )
    assert len(grid) == 3
    assert all(r.metrics["training_iteration"] == 4 for r in grid)


def test_with_resources_and_with_parameters(cluster, tmp_path):
    big = list(range(100_000))

    def uses_data(config, data):
        tune.report(
            {"n": len(data), "cpus": tune.get_context().get_trial_resources()["CPU"]}
        )

    trainable = tune.with_resources(
        tune.with_parameters(uses_data, data=big), {"cpu": 2}
    )
    grid = _run(tmp_path, trainable, {"k": tune.grid_search([1, 2])})
    assert [r.metrics["n"] for r in grid] == [100_000, 100_000]
    assert [r.metrics["cpus"] for r in grid] == [2.0, 2.0]


def test_a_raising_trial_is_an_error_in_the_grid(cluster, tmp_path):
    def maybe_fail(config):
        if config["x"] == 2:
            raise ValueError("bad x")
        tune.report({"score": config["x"]})

    grid = _run(tmp_path, maybe_fail, {"x": tune.grid_search([1, 2])})
    assert grid.num_errors == 1
    assert grid.num_terminated == 1
    assert isinstance(grid.errors[0], RayTaskError)
    assert "bad x" in str(grid.errors[0])
    assert os.path.exists(os.path.join(grid[1].path, "error.txt"))


def _checkpointing(config):
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d, open(os.path.join(d, "step")) as f:
            start = int(f.read()) + 1
    for step in range(start, 5):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            tune.report(
                {"step": step, "resumed_at": start},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def test_checkpoints_are_persisted_and_num_to_keep_prunes(cluster, tmp_path):
    grid = _run(
        tmp_path,
        _checkpointing,
        {},
        run_config={
            "checkpoint_config": tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute="step",
                checkpoint_score_order="min",
            )
        },
    )  # fmt: skip
    result = grid[0]
    names = sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_"))
    # the two lowest steps are kept, and the latest is never deleted
    assert names == ["checkpoint_000000", "checkpoint_000001", "checkpoint_000004"]
    assert result.checkpoint.path.endswith("checkpoint_000004")
    with open(os.path.join(result.checkpoint.to_directory(), "step")) as f:
        assert f.read() == "4"


class KillOnce(tune.Callback):
    """Kills the trial's actor process (SIGKILL) at its third result, once."""

    def __init__(self):
        self.killed = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["step"] == 2 and not self.killed:
            self.killed.append(result["pid"])
            os.kill(result["pid"], signal.SIGKILL)


def test_a_killed_trial_actor_is_retried_from_its_checkpoint(cluster, tmp_path):
    killer = KillOnce()
    grid = _run(
        tmp_path,
        _checkpointing,
        {},
        run_config={
            "failure_config": tune.FailureConfig(max_failures=1),
            "callbacks": [killer],
        },
    )
    assert len(killer.killed) == 1
    result = grid[0]
    assert result.error is None
    # the second run resumed after the last checkpoint it saw (step 1 or 2)
    assert result.metrics["resumed_at"] in (2, 3)
    assert result.metrics["step"] == 4
    assert result.metrics["pid"] != killer.killed[0]


def test_without_retries_a_killed_trial_errors(cluster, tmp_path):
    grid = _run(tmp_path, _checkpointing, {}, run_config={"callbacks": [KillOnce()]})
    assert grid.num_errors == 1
    assert isinstance(grid.errors[0], RayActorError)


class Counter(tune.Trainable):
    def setup(self, config):
        self.total = config["start"]

    def step(self):
        self.total += 1
        return {"total": self.total, "done": self.total >= 5}

    def save_checkpoint(self, checkpoint_dir):
        return {"total": self.total}

    def load_checkpoint(self, checkpoint):
        self.total = checkpoint["total"]


def test_class_trainable_steps_and_checkpoints(cluster, tmp_path):
    grid = _run(
        tmp_path,
        Counter,
        {"start": tune.grid_search([0, 2])},
        metric="total",
        mode="max",
        run_config={
            "checkpoint_config": tune.CheckpointConfig(
                checkpoint_frequency=2, checkpoint_at_end=True
            )
        },
    )
    assert [r.metrics["training_iteration"] for r in grid] == [5, 3]
    assert all(r.metrics["total"] == 5 for r in grid)
    assert grid[0].checkpoint is not None
    assert len(grid[0].best_checkpoints) == 3  # iterations 2, 4 and the end


def test_trial_name_and_dirname_creators(cluster, tmp_path):
    grid = _run(
        tmp_path,
        quadratic,
        {"x": tune.grid_search([5, 6])},
        trial_name_creator=lambda t: f"q{t.config['x']}",
        trial_dirname_creator=lambda t: f"dir_{t.config['x']}",
    )
    assert sorted(os.path.basename(r.path) for r in grid) == ["dir_5", "dir_6"]


def test_time_budget_ends_the_run(cluster, tmp_path):
    def endless(config):
        while True:
            tune.report({"x": 1})

    grid = _run(tmp_path, endless, {"k": tune.grid_search([1, 2, 3])}, time_budget_s=2)
    assert grid.num_errors == 0
    assert grid.num_terminated == len(grid)


def test_train_report_spelling_works_in_a_trial(cluster, tmp_path):
    from ember import train

    def via_train(config):
        train.report({"v": train.get_context().get_world_size()})

    grid = _run(tmp_path, via_train, {})
    assert grid[0].metrics["v"] == 1
