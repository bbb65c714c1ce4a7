"""ember.train's DataParallelTrainer on a real local cluster.

The workers are real actor processes in a placement group; they allreduce
through ember.util.collective; a worker is killed for real to test restarts.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

import ember
from ember import train
from ember.train import (
    CheckpointConfig,
    DataParallelTrainer,
    FailureConfig,
    RunConfig,
    ScalingConfig,
)
from ember.util import collective

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def _read_state(d):
    with open(os.path.join(d, "state.json")) as f:
        return json.load(f)


def _fit_linear(config):
    """Least squares by gradient descent on this rank's half of the data."""
    ctx = train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3
    x, y = x[rank::world], y[rank::world]
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(4)
    start = 0
    ckpt = train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = _read_state(d)
        w, start = np.array(state["w"]), state["epoch"] + 1
    for epoch in range(start, config["epochs"]):
        grad = 2 * xb.T @ (xb @ w - y) / 256
        collective.allreduce(grad)  # the group "default" of the run
        w -= config["lr"] * grad
        loss = float(np.mean((xb @ w - y) ** 2))
        metrics = {"epoch": epoch, "loss": loss, "rank": rank}
        if config.get("kill_at") == epoch and rank == 1 and ckpt is None:
            os.kill(os.getpid(), signal.SIGKILL)
        if epoch % config.get("every", 1) == 0:
            d = os.path.join(config["tmp"], f"r{rank}-e{epoch}")
            os.makedirs(d, exist_ok=True)
            if rank == 0:
                with open(os.path.join(d, "state.json"), "w") as f:
                    json.dump({"w": w.tolist(), "epoch": epoch}, f)
            train.report(metrics, checkpoint=train.Checkpoint.from_directory(d))
        else:
            train.report(metrics)


def test_two_workers_converge_with_allreduced_gradients(cluster, tmp_path):
    trainer = DataParallelTrainer(
        _fit_linear,
        train_loop_config={
            "epochs": 200,
            "lr": 0.1,
            "tmp": str(tmp_path / "t"),
            "every": 50,
        },
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name="lin", storage_path=str(tmp_path / "runs")),
    )
    result = trainer.fit()
    assert result.metrics["rank"] == 0  # rank 0's metrics
    assert result.metrics["epoch"] == 199
    assert result.metrics["loss"] < 1e-6
    assert len(result.metrics_dataframe) == 200
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as d:
        state = _read_state(d)
    np.testing.assert_allclose(state["w"], [1.5, -2.0, 0.5, 0.3], atol=1e-3)
    assert os.path.dirname(result.checkpoint.path) == result.path
    assert result.path == str(tmp_path / "runs" / "lin")


def test_context_knows_every_rank(cluster, tmp_path):
    def loop():
        ctx = train.get_context()
        train.report(
            {
                "rank": ctx.get_world_rank(),
                "size": ctx.get_world_size(),
                "local": ctx.get_local_rank(),
                "node": ctx.get_node_rank(),
            }
        )

    result = DataParallelTrainer(
        loop,
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name="ctx", storage_path=str(tmp_path)),
    ).fit()
    assert result.metrics == {"rank": 0, "size": 2, "local": 0, "node": 0}


def test_a_killed_worker_restarts_the_group_from_the_latest_checkpoint(
    cluster, tmp_path
):
    trainer = DataParallelTrainer(
        _fit_linear,
        train_loop_config={
            "epochs": 60,
            "lr": 0.1,
            "tmp": str(tmp_path / "t"),
            "every": 10,
            "kill_at": 35,
        },
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(
            name="ft",
            storage_path=str(tmp_path / "runs"),
            failure_config=FailureConfig(max_failures=1),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    assert result.metrics["epoch"] == 59
    epochs = list(result.metrics_dataframe["epoch"])
    # epochs 0..34 once (rank 1 died before reporting 35), then 31..59 again
    # from the checkpoint of epoch 30
    assert epochs[:35] == list(range(35))
    assert epochs[35:] == list(range(31, 60))
    kept = sorted(p for p in os.listdir(result.path) if p.startswith("checkpoint_"))
    assert len(kept) == 2  # num_to_keep


def test_more_failures_than_allowed_fail_the_run(cluster, tmp_path):
    def crash(config):
        raise ValueError("the loop is broken")

    trainer = DataParallelTrainer(
        crash,
        train_loop_config={},
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name="bad", storage_path=str(tmp_path)),
    )
    with pytest.raises(train.TrainingFailedError) as info:
        trainer.fit()
    assert isinstance(info.value.__cause__, ValueError)


def test_bad_configs_are_refused_at_once():
    with pytest.raises(ValueError, match="num_workers"):
        ScalingConfig(num_workers=0)
    with pytest.raises(ValueError, match="placement_strategy"):
        ScalingConfig(placement_strategy="ANYWHERE")
    with pytest.raises(TypeError, match="callable"):
        DataParallelTrainer(42)  # type: ignore[arg-type]
    assert ScalingConfig(num_workers=3).total_resources == {"CPU": 3.0}


def test_a_training_run_inside_a_tune_trial(cluster, tmp_path):
    """Ray 2.60's way: a Tune function trainable runs a trainer and reports its result
    (``Tuner(trainer)`` itself is refused there: "not string nor trainable")."""
    from ember import tune

    def trial(config):
        result = DataParallelTrainer(
            _fit_linear,
            train_loop_config={"epochs": 40, "lr": config["lr"], "tmp": config["tmp"]},
            scaling_config=ScalingConfig(
                num_workers=2, resources_per_worker={"CPU": 0.5}
            ),
            run_config=RunConfig(name=f"lr{config['lr']}", storage_path=config["tmp"]),
        ).fit()
        tune.report({"loss": result.metrics["loss"]})

    grid = tune.Tuner(
        tune.with_resources(trial, {"cpu": 0}),
        param_space={"lr": tune.grid_search([0.001, 0.1]), "tmp": str(tmp_path)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="t"),
    ).fit()
    assert grid.num_errors == 0
    assert grid.get_best_result().config["lr"] == 0.1


def test_each_worker_reads_its_own_shard_of_a_dataset(cluster, tmp_path):
    import ember.data

    def loop(config):
        shard = train.get_dataset_shard("train")
        seen = []
        for batch in shard.iter_batches(batch_size=16, batch_format="numpy"):
            seen.extend(int(v) for v in batch["id"])
        total = np.array([len(seen), sum(seen)], dtype=np.int64)
        collective.allreduce(total)
        train.report(
            {"rows": len(seen), "all_rows": int(total[0]), "sum": int(total[1])}
        )

    result = DataParallelTrainer(
        loop,
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name="data", storage_path=str(tmp_path)),
        datasets={"train": ember.data.range(100)},
    ).fit()
    assert result.metrics == {"rows": 50, "all_rows": 100, "sum": sum(range(100))}
