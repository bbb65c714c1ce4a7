"""OptunaSearch: Optuna's samplers behind the Searcher interface (needs ``optuna``)."""

from __future__ import annotations

from typing import Any

from ember.tune.search import sample
from ember.tune.search.searcher import Searcher


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            "OptunaSearch needs Optuna: run `pip install optuna` to use it"
        ) from exc
    return optuna


class OptunaSearch(Searcher):
    """Suggests configs with an Optuna study (TPE by default) and tells it the results."""

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        sampler: Any = None,
        seed: int | None = None,
        **_: Any,
    ) -> None:
        self._optuna = _import_optuna()
        super().__init__(metric, mode)
        self._space = space
        self._points = list(points_to_evaluate or [])
        self._sampler = sampler or self._optuna.samplers.TPESampler(seed=seed)
        self._study: Any = None
        self._trials: dict[str, Any] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        super().set_search_properties(metric, mode, config, **spec)
        if self._space is None:
            self._space = config
        return True

    def _ensure_study(self) -> Any:
        if self._study is None:
            if self._metric is None or self._mode is None:
                raise ValueError("OptunaSearch needs a metric and a mode")
            direction = "maximize" if self._mode == "max" else "minimize"
            self._optuna.logging.set_verbosity(self._optuna.logging.WARNING)
            self._study = self._optuna.create_study(
                sampler=self._sampler, direction=direction
            )
            for point in self._points:
                self._study.enqueue_trial(point)
        return self._study

    def _suggest_value(self, ot: Any, name: str, domain: Any) -> Any:
        if isinstance(domain, sample.Categorical):
            return ot.suggest_categorical(name, domain.categories)
        if isinstance(domain, sample.Integer):
            return ot.suggest_int(
                name, domain.lower, domain.upper - 1, log=domain.log_base is not None
            )
        if isinstance(domain, sample.Float):
            return ot.suggest_float(
                name, domain.lower, domain.upper, log=domain.log_base is not None,
                step=domain.q if domain.log_base is None else None,
            )  # fmt: skip
        return domain

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        study = self._ensure_study()
        ot = study.ask()
        self._trials[trial_id] = ot
        space = self._space or {}
        return {
            k: self._suggest_value(ot, k, v)
            for k, v in space.items()
            if isinstance(v, sample.Domain) and not v.is_function()
        }

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        ot = self._trials.pop(trial_id, None)
        if ot is None:
            return
        state = self._optuna.trial.TrialState
        if error or not result or self._metric not in result:
            self._study.tell(ot, state=state.FAIL)
        else:
            self._study.tell(ot, result[self._metric])
