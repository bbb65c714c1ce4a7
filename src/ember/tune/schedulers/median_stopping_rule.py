"""MedianStoppingRule: stop a trial whose best is below the median of the others' means."""

from __future__ import annotations

import collections
import statistics
from typing import Any

from ember.tune.schedulers.trial_scheduler import TrialScheduler


class MedianStoppingRule(TrialScheduler):
    """After grace_period, stop (or pause) a trial doing worse than the running median."""

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 60.0,
        min_samples_required: int = 3,
        min_time_slice: int = 0,
        hard_stop: bool = True,
    ) -> None:
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._min_time_slice = min_time_slice
        self._hard_stop = hard_stop
        self._results: dict[Any, list[dict[str, Any]]] = collections.defaultdict(list)
        self._stopped: set[Any] = set()
        self._completed: set[Any] = set()

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self._metric is None or self._mode is None:
            raise ValueError("MedianStoppingRule needs a metric and a mode")

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:  # fmt: skip
        if self._time_attr not in result or self._metric not in result:
            return self.CONTINUE
        if trial.trial_id in self._stopped:
            return self.STOP if self._hard_stop else self.PAUSE
        now = result[self._time_attr]
        self._results[trial.trial_id].append(result)
        if now < self._grace_period:
            return self.CONTINUE
        others = [
            t
            for t, rows in self._results.items()
            if t != trial.trial_id and rows and rows[-1][self._time_attr] >= now
        ]
        if len(others) < self._min_samples_required:
            return self.CONTINUE
        median = float(statistics.median([self._running_mean(t, now) for t in others]))
        best = max(
            self._sign() * r[self._metric] for r in self._results[trial.trial_id]
        )
        if best < median:
            self._stopped.add(trial.trial_id)
            return self.STOP if self._hard_stop else self.PAUSE
        return self.CONTINUE

    def _running_mean(self, trial_id: Any, now: float) -> float:
        metric = str(self._metric)
        rows = [r for r in self._results[trial_id] if r[self._time_attr] <= now]
        return float(statistics.fmean([self._sign() * r[metric] for r in rows]))

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:  # fmt: skip
        self._completed.add(trial.trial_id)
        if result and self._time_attr in result and self._metric in result:
            rows = self._results[trial.trial_id]
            if not rows or rows[-1] is not result:
                rows.append(result)

    def debug_string(self) -> str:
        return f"Using MedianStoppingRule: num_stopped: {len(self._stopped)}."
