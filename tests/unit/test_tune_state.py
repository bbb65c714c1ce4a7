"""Trial bookkeeping, the experiment-state files and the console table (pure)."""

from __future__ import annotations

import datetime
import io

from ember import tune
from ember.tune import experiment_state, progress
from ember.tune.search import BasicVariantGenerator
from ember.tune.trial import Trial


def _trial(tmp_path, i=0, **kw):
    return Trial(
        trial_id=f"abcde_{i:05d}",
        trainable_name="f",
        config={"lr": 0.1 * (i + 1), "nested": {"k": i}},
        experiment_tag=str(i),
        local_path=str(tmp_path / f"t{i}"),
        resources={"CPU": 1.0},
        **kw,
    )


def test_num_to_keep_by_score_keeps_the_latest(tmp_path):
    trial = _trial(tmp_path)
    policy = tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc")
    for i, acc in enumerate([0.9, 0.1, 0.8, 0.2]):
        name = f"checkpoint_{i:06d}"
        (tmp_path / "t0" / name).mkdir(parents=True)
        trial.add_checkpoint(name, {"acc": acc}, policy)
    kept = [name for name, _ in trial.checkpoints]
    assert kept == ["checkpoint_000000", "checkpoint_000002", "checkpoint_000003"]
    assert sorted(p.name for p in (tmp_path / "t0").iterdir()) == kept
    assert trial.next_checkpoint_index() == 4
    assert trial.checkpoint.path.endswith("checkpoint_000003")


def test_experiment_state_round_trip(tmp_path):
    path = str(tmp_path / "exp")
    assert not experiment_state.can_restore(path)
    gen = BasicVariantGenerator()
    gen.add_configurations(
        {"a": tune.grid_search([1, 2]), "f": tune.sample_from(lambda: 3)}, 1
    )
    gen.next_trial("x")
    trial = _trial(tmp_path, status="ERROR")
    trial.error = ValueError("no")
    experiment_state.save_tuner(path, {"param_space": {"a": 1}})
    experiment_state.save_state(path, {"trials": [trial], "search_alg": gen})
    assert experiment_state.can_restore(path)
    state = experiment_state.load_state(path)
    assert state["trials"][0].status == "ERROR"
    assert str(state["trials"][0].error) == "no"
    assert state["search_alg"].next_trial("y")[0] == {"a": 2, "f": 3}
    assert state["search_alg"].is_finished()
    assert experiment_state.load_tuner(path) == {"param_space": {"a": 1}}
    assert (tmp_path / "exp").stat().st_mode & 0o777 == 0o700


def test_status_table(tmp_path):
    done = _trial(tmp_path, 0, status="TERMINATED")
    done.last_result = {"training_iteration": 3, "time_total_s": 1.5, "loss": 0.25}
    running = _trial(tmp_path, 1, status="RUNNING")
    text = progress.status_text(
        [done, running], "loss", "min", 12.7, (2.0, 0.0),
        now=datetime.datetime(2026, 1, 2, 3, 4, 5),
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "Trial status: 1 TERMINATED | 1 RUNNING"
    assert lines[1] == "Current time: 2026-01-02 03:04:05. Total running time: 12s"
    assert lines[2] == "Logical resource usage: 1.0/2 CPUs, 0/0 GPUs"
    assert lines[3].startswith("Current best trial: abcde_00000 with loss=0.25")
    header = lines[5]
    for column in ("Trial name", "status", "lr", "nested/k", "iter", "total time (s)", "loss"):  # fmt: skip
        assert column in header
    assert "f_abcde_00000   TERMINATED" in lines[7]
    assert lines[7].rstrip(" │").endswith("0.25")


def test_reporter_verbosity(tmp_path):
    trial = _trial(tmp_path, status="TERMINATED")
    trial.last_result = {"training_iteration": 1, "time_total_s": 0.1, "loss": 1.0}
    out = io.StringIO()
    now = [0.0]
    reporter = progress.ConsoleReporter(1, "loss", "min", (2, 0), out=out, clock=lambda: now[0])  # fmt: skip
    reporter.trial_started(trial)
    reporter.trial_ended(trial)
    assert out.getvalue() == ""  # verbose 1: no per-trial boxes
    reporter.status([trial])
    reporter.status([trial])  # within the interval: not again
    assert out.getvalue().count("Trial status:") == 1
    now[0] = 31.0
    reporter.status([trial])
    assert out.getvalue().count("Trial status:") == 2
    loud = progress.ConsoleReporter(
        2, "loss", "min", (2, 0), out=(out2 := io.StringIO())
    )
    loud.trial_started(trial)
    loud.trial_ended(trial)
    assert "started with configuration" in out2.getvalue()
    assert "Trial f_abcde_00000 result" in out2.getvalue()
    silent = progress.ConsoleReporter(
        0, None, None, (2, 0), out=(out3 := io.StringIO())
    )
    silent.status([trial], force=True)
    assert out3.getvalue() == ""
