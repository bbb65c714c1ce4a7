"""PopulationBasedTraining: the bottom quantile exploits (clones) the top, then explores."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from ember.tune.schedulers.trial_scheduler import TrialScheduler
from ember.tune.search.sample import Domain


@dataclasses.dataclass
class _TrialState:
    last_score: float | None = None
    last_perturbation_time: float = 0.0
    last_result: dict[str, Any] | None = None


def explore(
    config: dict[str, Any],
    mutations: dict[str, Any],
    resample_probability: float,
    perturbation_factors: Sequence[float],
    custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None,
    rng: random.Random,
) -> dict[str, Any]:
    """A mutated copy of config: resample with resample_probability, else perturb."""
    new = copy.deepcopy(config)
    for key, spec in mutations.items():
        if isinstance(spec, dict):
            new[key] = explore(
                config.get(key, {}), spec, resample_probability,
                perturbation_factors, None, rng,
            )  # fmt: skip
        elif isinstance(spec, list | tuple):
            values = list(spec)
            if rng.random() < resample_probability or config.get(key) not in values:
                new[key] = rng.choice(values)
            else:
                index = values.index(config[key]) + rng.choice([-1, 1])
                new[key] = values[min(max(index, 0), len(values) - 1)]
        elif isinstance(spec, Domain) or callable(spec):
            if rng.random() < resample_probability or key not in config:
                new[key] = (
                    spec.sample(None, rng) if isinstance(spec, Domain) else spec()
                )
            else:
                value = config[key] * rng.choice(list(perturbation_factors))
                new[key] = int(value) if isinstance(config[key], int) else value
        else:
            raise TypeError(
                f"Unsupported hyperparam_mutations entry for {key!r}: {spec!r}; use a "
                "list, a search-space domain, a callable or a nested dict"
            )
    if custom_explore_fn is not None:
        new = custom_explore_fn(new)
        if new is None:
            raise ValueError("custom_explore_fn must return the new config")
    return new


class PopulationBasedTraining(TrialScheduler):
    """Every perturbation_interval, a trial in the bottom quantile restarts from the
    checkpoint of one in the top quantile with that trial's config mutated."""

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: dict[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: tuple[float, float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        seed: int | None = None,
    ) -> None:
        if not hyperparam_mutations and custom_explore_fn is None:
            raise ValueError(
                "You must specify at least one of `hyperparam_mutations` or "
                "`custom_explore_fn` to use PBT."
            )
        if not 0 <= quantile_fraction <= 0.5:
            raise ValueError("quantile_fraction must be between 0 and 0.5")
        if perturbation_interval <= 0:
            raise ValueError("perturbation_interval must be positive")
        if synch:
            raise NotImplementedError(
                "ember's PBT runs asynchronously only (synch=False)"
            )
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._interval = perturbation_interval
        self._burn_in = burn_in_period
        self._mutations = hyperparam_mutations or {}
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._factors = perturbation_factors
        self._custom_explore_fn = custom_explore_fn
        self._require_attrs = require_attrs
        self._state: dict[str, _TrialState] = {}
        self._trials: dict[str, Any] = {}
        self._rng = random.Random(seed)
        self._num_perturbations = 0

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self._metric is None or self._mode is None:
            raise ValueError("PopulationBasedTraining needs a metric and a mode")
        self._state[trial.trial_id] = _TrialState()
        self._trials[trial.trial_id] = trial

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:  # fmt: skip
        if self._time_attr not in result or self._metric not in result:
            if self._require_attrs:
                raise RuntimeError(
                    f"PBT needs {self._time_attr!r} and {self._metric!r} in every "
                    f"result; got {sorted(result)}"
                )
            return self.CONTINUE
        state = self._state[trial.trial_id]
        now = result[self._time_attr]
        state.last_score = self._sign() * result[self._metric]
        state.last_result = result
        if now < self._burn_in or now - state.last_perturbation_time < self._interval:
            return self.CONTINUE
        state.last_perturbation_time = now
        lower, upper = self.quantiles()
        if trial.trial_id not in lower:
            return self.CONTINUE
        donors = [t for t in upper if self._trials[t].latest_checkpoint_path]
        if not donors:
            return self.CONTINUE
        donor = self._trials[self._rng.choice(donors)]
        new_config = explore(
            donor.config, self._mutations, self._resample_probability,
            self._factors, self._custom_explore_fn, self._rng,
        )  # fmt: skip
        trial.pending_restore = (donor.latest_checkpoint_path, new_config)
        self._num_perturbations += 1
        return self.PAUSE

    def quantiles(self) -> tuple[list[str], list[str]]:
        """(bottom, top) trial ids by their last score."""
        scored = [
            (s.last_score, t)
            for t, s in self._state.items()
            if s.last_score is not None
        ]
        scored.sort(key=lambda e: e[0])
        if len(scored) <= 1:
            return [], []
        count = math.ceil(len(scored) * self._quantile_fraction)
        count = min(count, len(scored) // 2)
        ids = [t for _, t in scored]
        return ids[:count], ids[len(ids) - count :]

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:  # fmt: skip
        pass

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._state.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        return f"PopulationBasedTraining: {self._num_perturbations} perturbs."
