"""Tuner.restore after the driver running the experiment is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from tests.conftest import live_children, wait_until

import ember
from ember import tune
from ember.cluster_utils import Cluster
from ember.common import session

# heavy (autoscaling, kills, restarts, a CLI cluster): in the slow run
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent(
    """
    import sys
    import ember as ray
    from ember import tune
    from tests.integration.test_tune_restore import gated

    ray.init(address=sys.argv[1])
    tuner = tune.Tuner(
        gated,
        param_space={"x": tune.grid_search([0, 1, 2]), "gate": sys.argv[3]},
        tune_config=tune.TuneConfig(metric="step", mode="max"),
        run_config=tune.RunConfig(name="exp", storage_path=sys.argv[2], verbose=0),
    )
    tuner.fit()
    """
)


def gated(config):
    """x=0 finishes; x=1 checkpoints twice then waits for the gate; x=2 fails until it opens."""
    gate = config["gate"]
    if config["x"] == 2 and not os.path.exists(gate):
        raise RuntimeError("the gate is closed")
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "step")) as f:
            start = int(f.read()) + 1
    for step in range(start, 4):
        while config["x"] == 1 and step >= 2 and not os.path.exists(gate):
            time.sleep(0.05)  # the workload: blocked until the test opens the gate
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            tune.report(
                {"step": step, "resumed_at": start, "pid": os.getpid()},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


@pytest.fixture
def cluster(monkeypatch):
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 3},
        shutdown_at_exit=False,
    )
    yield c
    if ember.is_initialized():
        ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children())


def _summary(path: Path) -> dict:
    try:
        return json.loads((path / "experiment_state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"trials": []}


def _ready(path: Path) -> bool:
    trials = {t["trial_id"][-1]: t for t in _summary(path)["trials"]}
    return (
        len(trials) == 3
        and trials["0"]["status"] == "TERMINATED"
        and len(trials["1"]["checkpoints"]) == 2
        and trials["2"]["status"] == "ERROR"
    )


@pytest.mark.parametrize("restart_errored", [False, True])
def test_restore_resumes_a_run_whose_driver_was_killed(
    cluster, tmp_path, restart_errored
):
    gate = tmp_path / "gate"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path]))
    driver = subprocess.Popen(
        [sys.executable, str(script), cluster.address, str(tmp_path), str(gate)],
        env=env,
        cwd=ROOT,
    )
    experiment = tmp_path / "exp"
    try:
        assert wait_until(lambda: _ready(experiment), timeout_s=60)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    before = _summary(experiment)
    assert tune.Tuner.can_restore(experiment)
    assert not tune.Tuner.can_restore(tmp_path)
    gate.touch()

    cluster.connect()
    tuner = tune.Tuner.restore(str(experiment), gated, restart_errored=restart_errored)
    grid = tuner.fit()
    by_x = {r.config["x"]: r for r in grid}
    assert len(grid) == 3
    # the finished trial was not run again
    assert by_x[0].metrics["resumed_at"] == 0
    assert next(t["status"] for t in before["trials"]) == "TERMINATED"
    # the interrupted trial resumed after its last checkpoint (step 1)
    assert by_x[1].metrics["resumed_at"] == 2
    assert by_x[1].metrics["step"] == 3
    if restart_errored:
        assert by_x[2].error is None
        assert by_x[2].metrics["step"] == 3
    else:
        assert isinstance(by_x[2].error, Exception)
        assert grid.num_errors == 1
