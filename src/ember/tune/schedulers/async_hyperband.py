"""ASHAScheduler: asynchronous successive halving over one or more brackets."""

from __future__ import annotations

import math
import random
from typing import Any

from ember.tune.schedulers.trial_scheduler import TrialScheduler


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation, NaNs ignored), as numpy computes it."""
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return None
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


class _Bracket:
    """Rungs at min_t * rf**(k+s); a trial reaching a rung below the cutoff stops."""

    def __init__(
        self, min_t: float, max_t: float, reduction_factor: float, s: int,
        stop_last_trials: bool = True,
    ) -> None:  # fmt: skip
        self.rf = reduction_factor
        count = int(math.log(max_t / min_t) / math.log(reduction_factor) - s + 1)
        self.rungs: list[tuple[float, dict[str, float]]] = [
            (min_t * reduction_factor ** (k + s), {}) for k in reversed(range(count))
        ]
        self.stop_last_trials = stop_last_trials

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        if not recorded:
            return None
        return percentile(list(recorded.values()), (1 - 1 / self.rf) * 100)

    def on_result(self, trial_id: str, cur_iter: float, cur_rew: float | None) -> str:
        action = TrialScheduler.CONTINUE
        for milestone, recorded in self.rungs:
            if (
                cur_iter >= milestone
                and trial_id in recorded
                and not self.stop_last_trials
            ):
                break
            if cur_iter < milestone or trial_id in recorded:
                continue
            cutoff = self.cutoff(recorded)
            if cutoff is not None and cur_rew is not None and cur_rew < cutoff:
                action = TrialScheduler.STOP
            if cur_rew is not None:
                recorded[trial_id] = cur_rew
            break
        return action


class AsyncHyperBandScheduler(TrialScheduler):
    """Stops a trial at a rung when its metric is below the top 1/reduction_factor there."""

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
    ) -> None:
        if grace_period <= 0:
            raise ValueError("grace_period must be positive")
        if reduction_factor <= 1:
            raise ValueError("reduction_factor must be above 1")
        if brackets < 1:
            raise ValueError("brackets must be at least 1")
        if mode is not None and mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._max_t = max_t
        self._stop_last_trials = stop_last_trials
        self._brackets = [
            _Bracket(grace_period, max_t, reduction_factor, s, stop_last_trials)
            for s in range(brackets)
        ]
        self._trial_info: dict[str, _Bracket] = {}
        self._num_stopped = 0

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self._metric is None or self._mode is None:
            raise ValueError(
                "ASHAScheduler needs a metric and a mode: pass them to the scheduler "
                "or to TuneConfig"
            )
        sizes = [len(b.rungs) for b in self._brackets]
        weights = [math.e ** (s - max(sizes)) for s in sizes]
        index = random.choices(range(len(self._brackets)), weights=weights)[0]
        self._trial_info[trial.trial_id] = self._brackets[index]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:  # fmt: skip
        if self._time_attr not in result or self._metric not in result:
            return self.CONTINUE
        if result[self._time_attr] >= self._max_t and self._stop_last_trials:
            action = self.STOP
        else:
            bracket = self._trial_info[trial.trial_id]
            action = bracket.on_result(
                trial.trial_id,
                result[self._time_attr],
                self._sign() * result[self._metric],
            )
        if action == self.STOP:
            self._num_stopped += 1
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:  # fmt: skip
        if self._time_attr not in result or self._metric not in result:
            return
        bracket = self._trial_info.pop(trial.trial_id, None)
        if bracket is not None:
            bracket.on_result(
                trial.trial_id,
                result[self._time_attr],
                self._sign() * result[self._metric],
            )

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._trial_info.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        return f"Using AsyncHyperBand: num_stopped={self._num_stopped}"


ASHAScheduler = AsyncHyperBandScheduler
