"""ray.tune's public API as a Ray user calls it (passes unchanged on Ray 2.60)."""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

import cloudpickle
import pytest

import ember as ray
from ember import train, tune

# the trainables below travel by value: the workers need not import this module
# (Ray pickles with its own copy of cloudpickle)
getattr(ray, "cloudpickle", cloudpickle).register_pickle_by_value(sys.modules[__name__])


def objective(config):
    for step in range(3):
        tune.report({"loss": (config["x"] - 2) ** 2 + config["y"] / 10, "step": step})


def _run_config(tmp_path, **kwargs):
    return tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0, **kwargs)


def test_grid_and_random_search_find_the_best_config(ray_module, tmp_path):
    tuner = tune.Tuner(
        objective,
        param_space={"x": tune.grid_search([0, 1, 2, 3]), "y": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=_run_config(tmp_path),
    )
    results = tuner.fit()
    assert len(results) == 4
    assert results.num_errors == 0
    assert results.num_terminated == 4
    assert results.errors == []
    best = results.get_best_result()
    assert best.config["x"] == 2
    assert best.metrics["training_iteration"] == 3
    assert best.metrics["step"] == 2
    for key in ("trial_id", "time_total_s", "done", "config", "timestamp"):
        assert key in best.metrics
    assert results.get_best_result(metric="step", mode="max").metrics["step"] == 2
    frame = results.get_dataframe()
    assert len(frame) == 4
    assert "config/x" in frame.columns
    assert "logdir" in frame.columns
    assert sorted(r.config["x"] for r in results) == [0, 1, 2, 3]
    assert best.metrics_dataframe["step"].tolist() == [0, 1, 2]
    assert os.path.isdir(best.path)
    assert results.experiment_path == os.path.join(str(tmp_path), "exp")


def test_get_best_result_without_metric_raises(ray_module, tmp_path):
    results = tune.Tuner(
        objective,
        param_space={"x": tune.grid_search([1, 2]), "y": 0},
        run_config=_run_config(tmp_path),
    ).fit()
    with pytest.raises(ValueError, match="metric"):
        results.get_best_result()
    with pytest.raises(ValueError, match="mode"):
        results.get_best_result(metric="loss")
    assert results.get_best_result(metric="loss", mode="min").config["x"] == 2
    assert results[0].metrics["loss"] == 1.0
    # a single trial is the best one, with or without a metric
    single = tune.Tuner(
        objective,
        param_space={"x": 5, "y": 0},
        run_config=_run_config(tmp_path / "single"),
    ).fit()
    assert single.get_best_result().config["x"] == 5


def test_num_samples_and_stop(ray_module, tmp_path):
    def endless(config):
        i = 0
        while True:
            i += 1
            tune.report({"i": i, "c": config["c"]})

    results = tune.Tuner(
        endless,
        param_space={"c": tune.choice(["a", "b"])},
        tune_config=tune.TuneConfig(num_samples=3),
        run_config=_run_config(tmp_path, stop={"training_iteration": 2}),
    ).fit()
    assert len(results) == 3
    assert all(r.metrics["i"] == 2 for r in results)
    assert all(r.config["c"] in ("a", "b") for r in results)


def test_function_checkpoints(ray_module, tmp_path):
    def train_fn(config):
        for i in range(3):
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "i.txt"), "w") as f:
                    f.write(str(i))
                tune.report({"i": i}, checkpoint=tune.Checkpoint.from_directory(d))

    results = tune.Tuner(
        train_fn,
        run_config=_run_config(
            tmp_path, checkpoint_config=tune.CheckpointConfig(num_to_keep=1)
        ),
    ).fit()
    result = results[0]
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as d, open(os.path.join(d, "i.txt")) as f:
        assert f.read() == "2"
    assert len(result.best_checkpoints) == 1
    names = [n for n in os.listdir(result.path) if n.startswith("checkpoint_")]
    assert names == ["checkpoint_000002"]


def test_errors_are_collected(ray_module, tmp_path):
    def fails(config):
        raise ValueError("boom")

    results = tune.Tuner(fails, run_config=_run_config(tmp_path)).fit()
    assert results.num_errors == 1
    assert "boom" in str(results.errors[0])
    assert results[0].error is not None


class Adder(tune.Trainable):
    def setup(self, config):
        self.value = config["start"]

    def step(self):
        self.value += 1
        return {"value": self.value}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "v"), "w") as f:
            f.write(str(self.value))

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "v")) as f:
            self.value = int(f.read())


def test_class_trainable(ray_module, tmp_path):
    results = tune.Tuner(
        Adder,
        param_space={"start": tune.grid_search([0, 10])},
        tune_config=tune.TuneConfig(metric="value", mode="max"),
        run_config=_run_config(
            tmp_path,
            stop={"training_iteration": 3},
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        ),
    ).fit()
    assert results.get_best_result().metrics["value"] == 13
    assert [r.metrics["training_iteration"] for r in results] == [3, 3]
    assert results.get_best_result().checkpoint is not None


def test_with_parameters_and_resources(ray_module, tmp_path):
    def uses(config, table):
        tune.report({"total": sum(table) * config["k"]})

    trainable = tune.with_resources(
        tune.with_parameters(uses, table=list(range(10))), {"cpu": 1}
    )
    results = tune.Tuner(
        trainable,
        param_space={"k": tune.grid_search([1, 2])},
        run_config=_run_config(tmp_path),
    ).fit()
    assert sorted(r.metrics["total"] for r in results) == [45, 90]


def test_asha_scheduler_keeps_the_best(ray_module, tmp_path):
    from ember.tune.schedulers import ASHAScheduler

    def climb(config):
        for i in range(1, 5):
            tune.report({"acc": config["rate"] * i})

    results = tune.Tuner(
        climb,
        param_space={"rate": tune.grid_search([3, 2, 1])},
        tune_config=tune.TuneConfig(
            metric="acc",
            mode="max",
            scheduler=ASHAScheduler(max_t=4, grace_period=1, reduction_factor=2),
            max_concurrent_trials=1,
        ),
        run_config=_run_config(tmp_path),
    ).fit()
    best = results.get_best_result()
    assert best.config["rate"] == 3
    assert best.metrics["training_iteration"] == 4
    assert min(r.metrics["training_iteration"] for r in results) < 4


def test_session_calls_outside_a_trial_warn():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tune.report({"a": 1}) is None
        assert tune.get_checkpoint() is None
        assert tune.get_context().get_trial_name() is None
    assert len(caught) >= 3
    assert all("only be called inside" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", ["get_checkpoint", "get_context"])
def test_train_session_calls_outside_a_training_function_raise(name):
    with pytest.raises(RuntimeError, match="cannot be used outside"):
        getattr(train, name)()
    with pytest.raises(RuntimeError, match="cannot be used outside"):
        train.report({"a": 1})


def test_checkpoint_directories(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights").write_text("w")
    checkpoint = tune.Checkpoint.from_directory(str(src))
    assert checkpoint.path == str(src)
    copied = checkpoint.to_directory(str(tmp_path / "dst"))
    with open(os.path.join(copied, "weights")) as f:
        assert f.read() == "w"
    with checkpoint.as_directory() as d:
        assert os.listdir(d) == ["weights"]
    assert train.Checkpoint.from_directory(str(src)).path == str(src)


def test_search_space_constructors():
    space = [
        tune.uniform(0, 1), tune.quniform(0, 1, 0.1), tune.loguniform(1e-3, 1),
        tune.qloguniform(1e-3, 1, 1e-3), tune.randint(0, 5), tune.qrandint(0, 10, 2),
        tune.lograndint(1, 100), tune.randn(0, 1), tune.choice([1, 2]),
    ]  # fmt: skip
    for domain in space:
        domain.sample()
    assert tune.grid_search([1, 2]) == {"grid_search": [1, 2]}


@pytest.mark.ember_only
def test_tune_config_checks_its_arguments_early():
    # Ray 2.60 accepts these and fails later, in fit()
    with pytest.raises(ValueError, match="mode"):
        tune.TuneConfig(mode="maximum")
    with pytest.raises(ValueError, match="num_samples"):
        tune.TuneConfig(num_samples=0)


def test_can_restore_and_restore(ray_module, tmp_path):
    assert not tune.Tuner.can_restore(str(tmp_path))
    tune.Tuner(
        objective,
        param_space={"x": tune.grid_search([1, 2]), "y": 0},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=_run_config(tmp_path),
    ).fit()
    path = os.path.join(str(tmp_path), "exp")
    assert tune.Tuner.can_restore(path)
    restored = tune.Tuner.restore(path, objective).fit()
    assert len(restored) == 2
    assert restored.get_best_result().config["x"] == 2
    assert ray.is_initialized()
