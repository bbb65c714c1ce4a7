"""HyperBandScheduler: synchronous successive halving in brackets of growing budget."""

from __future__ import annotations

import math
from typing import Any

from ember.tune.schedulers.trial_scheduler import TrialScheduler


class _Bracket:
    """n trials run to milestone r (then wait, PAUSED); the best n/eta go on to r*eta."""

    def __init__(self, n: int, r: float, eta: float, max_t: float) -> None:
        self.n = n
        self.r = r
        self.eta = eta
        self.max_t = max_t
        self.milestone = r
        self.trials: list[Any] = []
        self.live: dict[str, float | None] = {}  # trial id -> score at the milestone

    def filled(self) -> bool:
        return len(self.trials) >= self.n

    def add(self, trial: Any) -> None:
        self.trials.append(trial)
        self.live[trial.trial_id] = None

    def all_reached(self) -> bool:
        return all(score is not None for score in self.live.values())

    def halve(self) -> tuple[list[str], list[str]]:
        """(continue, stop) ids; the milestone moves on."""
        keep = max(math.ceil(len(self.live) / self.eta), 1)
        ranked = sorted(self.live, key=lambda t: self.live[t] or -math.inf)
        good, bad = ranked[-keep:], ranked[:-keep]
        self.milestone = min(self.milestone * self.eta, self.max_t)
        self.live = dict.fromkeys(good)
        return good, bad


class HyperBandScheduler(TrialScheduler):
    """Ray's HyperBand: trials wait (PAUSE) at each milestone for their bracket."""

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        if max_t <= 0 or reduction_factor <= 1:
            raise ValueError("HyperBand needs max_t > 0 and reduction_factor > 1")
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._max_t = max_t
        self._eta = reduction_factor
        self._stop_last_trials = stop_last_trials
        self._s_max_1 = round(math.log(max_t) / math.log(reduction_factor)) + 1
        self._brackets: list[_Bracket] = []
        self._s = self._s_max_1 - 1
        self._of: dict[str, _Bracket] = {}
        self._resumable: set[str] = set()

    def _new_bracket(self) -> _Bracket:
        s = self._s
        n0 = math.ceil(self._s_max_1 / (s + 1) * self._eta**s)
        r0 = self._max_t * self._eta ** (-s)
        self._s = s - 1 if s > 0 else self._s_max_1 - 1
        bracket = _Bracket(n0, r0, self._eta, self._max_t)
        self._brackets.append(bracket)
        return bracket

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self._metric is None or self._mode is None:
            raise ValueError("HyperBandScheduler needs a metric and a mode")
        bracket = self._brackets[-1] if self._brackets else None
        if bracket is None or bracket.filled():
            bracket = self._new_bracket()
        bracket.add(trial)
        self._of[trial.trial_id] = bracket

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:  # fmt: skip
        bracket = self._of.get(trial.trial_id)
        if (
            bracket is None
            or self._time_attr not in result
            or self._metric not in result
        ):
            return self.CONTINUE
        if result[self._time_attr] >= self._max_t and self._stop_last_trials:
            bracket.live.pop(trial.trial_id, None)
            return self.STOP
        if result[self._time_attr] < bracket.milestone:
            return self.CONTINUE
        bracket.live[trial.trial_id] = self._sign() * result[self._metric]
        if not bracket.all_reached():
            return self.PAUSE
        return self._halve(tune_controller, bracket, trial.trial_id)

    def _halve(self, tune_controller: Any, bracket: _Bracket, current: str) -> str:
        good, bad = bracket.halve()
        for trial in bracket.trials:
            if trial.trial_id == current:
                continue
            if trial.trial_id in bad and trial.status == "PAUSED":
                tune_controller.stop_trial(trial)
            elif trial.trial_id in good:
                self._resumable.add(trial.trial_id)
        return self.CONTINUE if current in good else self.STOP

    def _forget(self, tune_controller: Any, trial: Any) -> None:
        bracket = self._of.pop(trial.trial_id, None)
        if bracket is None:
            return
        bracket.live.pop(trial.trial_id, None)
        self._resumable.discard(trial.trial_id)
        if bracket.live and bracket.all_reached():
            good, bad = bracket.halve()
            for t in bracket.trials:
                if t.trial_id in bad and t.status == "PAUSED":
                    tune_controller.stop_trial(t)
                elif t.trial_id in good:
                    self._resumable.add(t.trial_id)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:  # fmt: skip
        self._forget(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._forget(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._forget(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == "PENDING":
                return trial
        for trial in trials:
            if trial.status == "PAUSED" and trial.trial_id in self._resumable:
                self._resumable.discard(trial.trial_id)
                return trial
        return None

    def debug_string(self) -> str:
        return f"Using HyperBand: {len(self._brackets)} brackets"
