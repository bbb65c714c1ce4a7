"""Trial schedulers: early stopping and population-based training (Ray's names)."""

from __future__ import annotations

from typing import Any

from ember.tune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from ember.tune.schedulers.hyperband import HyperBandScheduler
from ember.tune.schedulers.median_stopping_rule import MedianStoppingRule
from ember.tune.schedulers.pbt import PopulationBasedTraining
from ember.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

_SCHEDULERS = {
    "fifo": FIFOScheduler,
    "async_hyperband": AsyncHyperBandScheduler,
    "asha": ASHAScheduler,
    "hyperband": HyperBandScheduler,
    "median_stopping_rule": MedianStoppingRule,
    "pbt": PopulationBasedTraining,
}


def create_scheduler(scheduler: str, **kwargs: Any) -> TrialScheduler:
    """A scheduler by its short name ("asha", "hyperband", "pbt", ...)."""
    try:
        cls = _SCHEDULERS[scheduler]
    except KeyError:
        raise ValueError(
            f"The `scheduler` argument must be one of {sorted(_SCHEDULERS)}. "
            f"Got: {scheduler}"
        ) from None
    scheduler_obj: TrialScheduler = cls(**kwargs)
    return scheduler_obj


__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "TrialScheduler",
    "create_scheduler",
]
