"""The scheduler interface (decisions CONTINUE / PAUSE / STOP) and FIFOScheduler."""

from __future__ import annotations

from typing import Any


class TrialScheduler:
    """Decides, per result, whether a trial continues, pauses or stops.

    The methods are fed the controller (which has ``get_trials()``), the trial
    and its result; they keep their own state and do no I/O, so tests drive
    them with made-up results.
    """

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"

    _metric: str | None = None
    _mode: str | None = None

    @property
    def metric(self) -> str | None:
        return self._metric

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:  # fmt: skip
        if self._metric and metric and self._metric != metric:
            return False
        if self._mode and mode and self._mode != mode:
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def _sign(self) -> float:
        return -1.0 if self._mode == "min" else 1.0

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        pass

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        pass

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:  # fmt: skip
        return self.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:  # fmt: skip
        pass

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        pass

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """A PENDING trial to start, else a PAUSED one to resume, else None."""
        trials = tune_controller.get_trials()
        for status in ("PENDING", "PAUSED"):
            for trial in trials:
                if trial.status == status:
                    return trial
        return None

    def debug_string(self) -> str:
        return f"Using {type(self).__name__}."


class FIFOScheduler(TrialScheduler):
    """Runs every trial to its end, in the order they were added."""
