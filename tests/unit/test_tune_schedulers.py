"""Schedulers' decisions, fed made-up results (pure: no cluster)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from ember import tune
from ember.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)
from ember.tune.schedulers.pbt import explore

CONTINUE, STOP, PAUSE = (
    TrialScheduler.CONTINUE,
    TrialScheduler.STOP,
    TrialScheduler.PAUSE,
)


@dataclasses.dataclass
class FakeTrial:
    trial_id: str
    config: dict = dataclasses.field(default_factory=dict)
    status: str = "PENDING"
    latest_checkpoint_path: str | None = None
    pending_restore: tuple | None = None


class FakeController:
    def __init__(self, trials):
        self.trials = trials

    def get_trials(self):
        return self.trials


def _result(it, score, attr="training_iteration"):
    return {attr: it, "score": score}


def test_fifo_runs_pending_before_paused():
    trials = [FakeTrial("a", status="PAUSED"), FakeTrial("b")]
    fifo = FIFOScheduler()
    assert fifo.choose_trial_to_run(FakeController(trials)).trial_id == "b"
    trials[1].status = "RUNNING"
    assert fifo.choose_trial_to_run(FakeController(trials)).trial_id == "a"
    assert fifo.on_trial_result(None, trials[0], _result(1, 0)) == CONTINUE


def test_asha_stops_trials_below_the_rung_cutoff():
    asha = ASHAScheduler(metric="score", mode="max", max_t=9, grace_period=1, reduction_factor=3)  # fmt: skip
    trials = [FakeTrial(str(i)) for i in range(4)]
    for t in trials:
        asha.on_trial_add(None, t)
    # rungs at 1, 3 (and 9 = max_t): the first at a rung always continues
    assert asha.on_trial_result(None, trials[0], _result(1, 10)) == CONTINUE
    assert asha.on_trial_result(None, trials[1], _result(1, 20)) == CONTINUE
    # cutoff = 66.7th percentile of {10, 20} = 16.67: 5 is below
    assert asha.on_trial_result(None, trials[2], _result(1, 5)) == STOP
    assert asha.on_trial_result(None, trials[3], _result(1, 30)) == CONTINUE
    # past rung 1, before rung 3: continue
    assert asha.on_trial_result(None, trials[3], _result(2, 0)) == CONTINUE
    assert asha.on_trial_result(None, trials[3], _result(3, 1)) == CONTINUE
    assert asha.on_trial_result(None, trials[1], _result(3, 0)) == STOP
    # max_t reached: stop
    assert asha.on_trial_result(None, trials[3], _result(9, 100)) == STOP


def test_asha_min_mode_and_missing_metric():
    asha = ASHAScheduler(metric="score", mode="min", max_t=10, grace_period=1, reduction_factor=2)  # fmt: skip
    a, b = FakeTrial("a"), FakeTrial("b")
    asha.on_trial_add(None, a)
    asha.on_trial_add(None, b)
    assert asha.on_trial_result(None, a, _result(1, 1.0)) == CONTINUE
    assert asha.on_trial_result(None, b, _result(1, 2.0)) == STOP  # higher loss
    assert asha.on_trial_result(None, b, {"other": 1}) == CONTINUE


def test_asha_brackets_and_validation():
    random.seed(0)
    asha = ASHAScheduler(
        metric="m", mode="max", max_t=81, reduction_factor=3, brackets=3
    )
    assert [len(b.rungs) for b in asha._brackets] == [5, 4, 3]
    assert [r[0] for r in asha._brackets[1].rungs] == [81, 27, 9, 3]
    with pytest.raises(ValueError):
        ASHAScheduler(grace_period=0)
    with pytest.raises(ValueError, match="metric and a mode"):
        ASHAScheduler().on_trial_add(None, FakeTrial("x"))


def test_median_stopping_rule():
    rule = MedianStoppingRule(
        time_attr="t",
        metric="score",
        mode="max",
        grace_period=2,
        min_samples_required=2,
    )
    trials = [FakeTrial(str(i)) for i in range(3)]
    for t in trials:
        rule.on_trial_add(None, t)
    for step in range(1, 4):
        for t, score in zip(trials[:2], (10, 20), strict=True):
            assert (
                rule.on_trial_result(None, t, {"t": step, "score": score}) == CONTINUE
            )
    assert (
        rule.on_trial_result(None, trials[2], {"t": 1, "score": 1}) == CONTINUE
    )  # grace
    # median of the others' running means (10, 20) = 15 > best 1: stop
    assert rule.on_trial_result(None, trials[2], {"t": 2, "score": 1}) == STOP
    assert rule.on_trial_result(None, trials[2], {"t": 3, "score": 99}) == STOP
    soft = MedianStoppingRule(time_attr="t", metric="score", mode="max", grace_period=0, min_samples_required=1, hard_stop=False)  # fmt: skip
    soft.on_trial_add(None, trials[0])
    soft.on_trial_result(None, trials[0], {"t": 1, "score": 5})
    assert soft.on_trial_result(None, trials[1], {"t": 1, "score": 1}) == PAUSE


def test_pbt_exploits_the_top_quantile():
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", metric="score", mode="max",
        perturbation_interval=2, quantile_fraction=0.5,
        hyperparam_mutations={"lr": [0.1, 0.2, 0.3]}, seed=0,
    )  # fmt: skip
    good = FakeTrial("good", {"lr": 0.2}, latest_checkpoint_path="/ckpt/good")
    bad = FakeTrial("bad", {"lr": 0.1})
    for t in (good, bad):
        pbt.on_trial_add(None, t)
    assert pbt.on_trial_result(None, good, _result(1, 10)) == CONTINUE
    assert pbt.on_trial_result(None, bad, _result(1, 1)) == CONTINUE
    assert (
        pbt.on_trial_result(None, good, _result(2, 11)) == CONTINUE
    )  # top: keeps going
    assert pbt.on_trial_result(None, bad, _result(2, 2)) == PAUSE
    path, config = bad.pending_restore
    assert path == "/ckpt/good"
    assert config["lr"] in (0.1, 0.2, 0.3)
    # not due again until two more iterations
    assert pbt.on_trial_result(None, bad, _result(3, 0)) == CONTINUE


def test_pbt_without_a_donor_checkpoint_continues():
    pbt = PopulationBasedTraining(metric="s", mode="min", time_attr="i", perturbation_interval=1, hyperparam_mutations={"a": [1, 2]})  # fmt: skip
    x, y = FakeTrial("x", {"a": 1}), FakeTrial("y", {"a": 2})
    pbt.on_trial_add(None, x)
    pbt.on_trial_add(None, y)
    pbt.on_trial_result(None, x, {"i": 1, "s": 0.0})
    assert pbt.on_trial_result(None, y, {"i": 1, "s": 5.0}) == CONTINUE


def test_explore_resamples_or_perturbs():
    rng = random.Random(0)
    mutations = {"lr": tune.uniform(0, 1), "bs": [16, 32, 64], "n": {"k": [1, 2]}}
    config = {"lr": 0.5, "bs": 32, "n": {"k": 1}, "other": "x"}
    seen_lr = set()
    for _ in range(50):
        new = explore(config, mutations, 0.25, (1.2, 0.8), None, rng)
        assert new["bs"] in (16, 32, 64)
        assert new["n"]["k"] in (1, 2)
        assert new["other"] == "x"
        seen_lr.add(round(new["lr"], 6))
    assert {0.6, 0.4} <= seen_lr  # perturbed by the factors
    assert len(seen_lr) > 2  # and resampled
    with pytest.raises(ValueError):
        PopulationBasedTraining(metric="m", mode="max")


def test_stoppers():
    from ember.tune.stopper import (
        CombinedStopper,
        MaximumIterationStopper,
        TimeoutStopper,
        as_stopper,
    )

    by_dict = as_stopper({"acc": 0.9})
    assert not by_dict("t", {"acc": 0.5})
    assert by_dict("t", {"acc": 0.95})
    with pytest.raises(KeyError, match="acc"):
        by_dict("t", {"loss": 1})
    assert as_stopper(lambda tid, r: r["x"] > 1)("t", {"x": 2})
    now = [0.0]
    timeout = TimeoutStopper(10, clock=lambda: now[0])
    combined = CombinedStopper(MaximumIterationStopper(2), timeout)
    assert not combined("t", {})
    assert not combined.stop_all()
    assert combined("t", {})
    now[0] = 11.0
    assert combined.stop_all()
    with pytest.raises(ValueError):
        as_stopper(3)


class StoppingController(FakeController):
    def __init__(self, trials):
        super().__init__(trials)
        self.stopped = []

    def stop_trial(self, trial):
        trial.status = "TERMINATED"
        self.stopped.append(trial.trial_id)


def test_hyperband_pauses_at_the_milestone_then_halves():
    from ember.tune.schedulers import HyperBandScheduler

    hb = HyperBandScheduler(metric="score", mode="max", max_t=9, reduction_factor=3)
    # s_max + 1 = 3 brackets; the first has ceil(3/3 * 9) = 9 trials at r = 1
    trials = [FakeTrial(str(i), status="RUNNING") for i in range(9)]
    controller = StoppingController(trials)
    for t in trials:
        hb.on_trial_add(controller, t)
    for i, t in enumerate(trials[:-1]):
        assert hb.on_trial_result(controller, t, _result(1, i)) == PAUSE
        t.status = "PAUSED"
    # the last one completes the rung: the best 9/3 = 3 (scores 6, 7, 8) go on
    assert hb.on_trial_result(controller, trials[8], _result(1, 8)) == CONTINUE
    assert sorted(controller.stopped) == [str(i) for i in range(6)]
    resumed = []
    while (t := hb.choose_trial_to_run(controller)) is not None:
        t.status = "RUNNING"
        resumed.append(t.trial_id)
    assert sorted(resumed) == ["6", "7"]
    # next milestone is 3 iterations
    assert hb.on_trial_result(controller, trials[6], _result(2, 0)) == CONTINUE
    assert hb.on_trial_result(controller, trials[6], _result(3, 0)) == PAUSE


def test_create_scheduler_and_searcher_by_name():
    from ember.tune.search import BasicVariantGenerator

    assert isinstance(
        tune.create_scheduler("asha", metric="m", mode="max"), ASHAScheduler
    )
    assert isinstance(tune.create_scheduler("fifo"), FIFOScheduler)
    assert isinstance(tune.create_searcher("random"), BasicVariantGenerator)
    with pytest.raises(ValueError, match="must be one of"):
        tune.create_scheduler("nope")
    with pytest.raises(ValueError, match="must be one of"):
        tune.create_searcher("nope")
