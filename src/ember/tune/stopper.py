"""Stoppers: when a trial (or the whole experiment) ends, from its results."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Stopper:
    """``__call__(trial_id, result)`` stops one trial; ``stop_all()`` ends the run."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        raise NotImplementedError

    def stop_all(self) -> bool:
        raise NotImplementedError


class NoopStopper(Stopper):
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return False


class FunctionStopper(Stopper):
    """Wraps ``fn(trial_id, result) -> bool``."""

    def __init__(self, function: Callable[[str, dict[str, Any]], bool]) -> None:
        self._fn = function

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(self._fn(trial_id, result))

    def stop_all(self) -> bool:
        return False

    @classmethod
    def is_valid_function(cls, fn: Any) -> bool:
        return callable(fn) and not isinstance(fn, Stopper)


class MaximumIterationStopper(Stopper):
    """Stops each trial after max_iter results."""

    def __init__(self, max_iter: int) -> None:
        self._max_iter = max_iter
        self._iter: dict[str, int] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self._iter[trial_id] = self._iter.get(trial_id, 0) + 1
        return self._iter[trial_id] >= self._max_iter

    def stop_all(self) -> bool:
        return False


class TimeoutStopper(Stopper):
    """Ends the whole run once ``timeout`` seconds (or a timedelta) have passed."""

    def __init__(
        self, timeout: Any, clock: Callable[[], float] = time.monotonic
    ) -> None:
        seconds = (
            timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
        )
        if not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        self._budget = float(seconds)
        self._clock = clock
        self._start: float | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self._start is None:
            self._start = self._clock()
        return self._clock() - self._start >= self._budget


class CombinedStopper(Stopper):
    """Stops when any of its stoppers does."""

    def __init__(self, *stoppers: Stopper) -> None:
        self._stoppers = stoppers

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any([s(trial_id, result) for s in self._stoppers])  # noqa: C419  (every stopper sees every result)

    def stop_all(self) -> bool:
        return any([s.stop_all() for s in self._stoppers])  # noqa: C419  (every stopper is asked)


class _DictStopper(Stopper):
    """``stop={"metric": threshold}``: a trial stops once any metric reaches its value."""

    def __init__(self, criteria: dict[str, Any]) -> None:
        self._criteria = criteria

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for key, threshold in self._criteria.items():
            if key not in result:
                raise KeyError(
                    f"Stopping criterion {key!r} is not in the trial's result "
                    f"(its keys: {sorted(result)})"
                )
            if result[key] >= threshold:
                return True
        return False

    def stop_all(self) -> bool:
        return False


def as_stopper(stop: Any) -> Stopper:
    """RunConfig.stop (None, dict, callable or Stopper) as a Stopper."""
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, dict):
        return _DictStopper(stop)
    if callable(stop):
        return FunctionStopper(stop)
    raise ValueError(
        f"RunConfig.stop must be a dict, a callable or a Stopper, got {type(stop).__name__}"
    )
